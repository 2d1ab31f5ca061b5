package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestLoadConnReadsEveryFraming(t *testing.T) {
	big := strings.Repeat("x", 10_000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != "POST" || r.Header.Get("Authorization") != "Bearer t" || string(body) != `{"q":1}` {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		switch r.URL.Query().Get("f") {
		case "length":
			w.Write([]byte("short"))
		case "chunked":
			w.Write([]byte(big[:5000]))
			w.(http.Flusher).Flush()
			w.Write([]byte(big[5000:]))
		case "close":
			w.Header().Set("Connection", "close")
			w.Write([]byte("closing"))
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, tc := range []struct {
		name, query, want string
	}{
		{"content-length", "length", "short"},
		{"chunked", "chunked", big},
		{"connection close", "close", "closing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newLoadConn(addr, "/?f="+tc.query, []byte(`{"q":1}`), "Authorization: Bearer t")
			defer c.Close()
			for i := range 3 { // the connection is reused (or redialled after close)
				status, body, err := c.do()
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				if status != http.StatusOK || string(body) != tc.want {
					t.Fatalf("request %d: got %d %.40q, want 200 %.40q", i, status, body, tc.want)
				}
			}
		})
	}
}
