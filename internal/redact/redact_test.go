package redact

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	const secret = "trk_agent_s3cr3t/value+x"
	r := New(secret, "short", "")
	cases := []struct {
		name, in string
	}{
		{"plain", "token is " + secret + " ok"},
		{"base64", "b64 " + base64.StdEncoding.EncodeToString([]byte(secret))},
		{"base64url", "b64 " + base64.RawURLEncoding.EncodeToString([]byte(secret))},
		{"url", "https://x/?t=" + url.QueryEscape(secret)},
		{"twice", secret + secret},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := r.String(c.in)
			if strings.Contains(got, secret) || !strings.Contains(got, Mask) {
				t.Fatalf("not masked: %q", got)
			}
			if strings.Contains(got, base64.StdEncoding.EncodeToString([]byte(secret))) {
				t.Fatalf("base64 form leaked: %q", got)
			}
		})
	}
	if got := r.String("a short word"); got != "a short word" {
		t.Fatalf("short secret must be ignored, got %q", got)
	}
}

func TestValueNested(t *testing.T) {
	const secret = "sk-ant-api03-abcdefgh"
	r := New(secret)
	v := r.Value(map[string]any{"a": []any{"x " + secret, 3.0}, "b": map[string]any{"c": secret}})
	m := v.(map[string]any)
	if s := m["a"].([]any)[0].(string); strings.Contains(s, secret) {
		t.Fatalf("nested slice leaked: %q", s)
	}
	if s := m["b"].(map[string]any)["c"].(string); s != Mask {
		t.Fatalf("nested map leaked: %q", s)
	}
}

func TestNilAndEmpty(t *testing.T) {
	var r *Redactor
	if r.String("x") != "x" || !r.Empty() || !New().Empty() {
		t.Fatal("nil or empty redactor must pass text through")
	}
}

func TestWithAddsSecrets(t *testing.T) {
	r := New("first-secret-value").With("second-secret-value")
	got := r.String("a first-secret-value b second-secret-value")
	if strings.Contains(got, "first-secret") || strings.Contains(got, "second-secret") {
		t.Fatalf("not masked: %q", got)
	}
	var nilR *Redactor
	if nilR.With("third-secret-value").String("third-secret-value") != Mask {
		t.Fatal("With on nil must work")
	}
}
