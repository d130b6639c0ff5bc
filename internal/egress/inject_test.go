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
	in, err := NewInjector(up.URL, "x-api-key", "sk-real-key")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(in)
	defer srv.Close()
	for _, forged := range []map[string]string{
		{"x-api-key": "sk-attacker-key"},
		{"Authorization": "Bearer sk-attacker-oauth"},
		{},
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
	for _, bad := range [][3]string{{"ftp://x", "h", "v"}, {"https://x", "", "v"}, {"https://x", "h", ""}} {
		if _, err := NewInjector(bad[0], bad[1], bad[2]); err == nil {
			t.Errorf("NewInjector%v accepted", bad)
		}
	}
}
