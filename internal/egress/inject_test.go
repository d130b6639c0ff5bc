package egress

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestInjectorPinsTheCredential(t *testing.T) {
	var got http.Header
	var path string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, path = r.Header.Clone(), r.URL.Path
		io.WriteString(w, "answer")
	}))
	defer up.Close()
	in, err := NewInjector(up.URL, "x-api-key", "sk-real-key", "sk-task-secret")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(in)
	defer srv.Close()
	for _, forged := range []map[string]string{
		{"x-api-key": "sk-task-secret"},
		{"Authorization": "Bearer sk-task-secret"},
		{"x-api-key": "sk-task-secret", "Cookie": "c=1", "Proxy-Authorization": "Basic eDp5"},
	} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/messages", strings.NewReader("{}"))
		for k, v := range forged {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "answer" || path != "/v1/messages" {
			t.Fatalf("forwarded badly: %q %q", body, path)
		}
		if got.Get("X-Api-Key") != "sk-real-key" || got.Get("Authorization") != "" {
			t.Fatalf("credential not pinned with %v: upstream saw %v", forged, got)
		}
	}
	for _, bad := range [][4]string{{"ftp://x", "h", "v", "s"}, {"https://x", "", "v", "s"}, {"https://x", "h", "", "s"}, {"https://x", "h", "v", ""}} {
		if _, err := NewInjector(bad[0], bad[1], bad[2], bad[3]); err == nil {
			t.Errorf("NewInjector%v accepted", bad)
		}
	}
}

// Only a request carrying the task's secret is forwarded: anyone else who
// reaches the injector must not spend the real key.
func TestInjectorRefusesWithoutTheTaskSecret(t *testing.T) {
	calls := 0
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		io.WriteString(w, "answer")
	}))
	defer up.Close()
	in, err := NewInjector(up.URL, "x-api-key", "sk-real-key", "sk-task-secret")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(in)
	defer srv.Close()
	for _, tc := range []struct {
		name    string
		headers map[string]string
	}{
		{"no credential", map[string]string{}},
		{"attacker key", map[string]string{"x-api-key": "sk-attacker-key"}},
		{"attacker bearer", map[string]string{"Authorization": "Bearer sk-attacker-oauth"}},
		{"secret prefix", map[string]string{"x-api-key": "sk-task-secre"}},
		{"secret with suffix", map[string]string{"x-api-key": "sk-task-secretX"}},
		{"secret in the wrong scheme", map[string]string{"Authorization": "Basic sk-task-secret"}},
		{"real key", map[string]string{"x-api-key": "sk-real-key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/messages", strings.NewReader("{}"))
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("answered %d %q, want 401", resp.StatusCode, body)
			}
			if strings.Contains(string(body), "sk-real-key") || strings.Contains(string(body), "sk-task-secret") {
				t.Fatalf("refusal leaks a credential: %q", body)
			}
		})
	}
	if calls != 0 {
		t.Fatalf("upstream called %d times without the secret", calls)
	}
}
