package ots

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The Esplora and Bitcoin Core servers here are stand-ins on 127.0.0.1
// serving the real header of block 358391: Bitcoin cannot be reached from
// these machines.

func TestOnlineHeaderSources(t *testing.T) {
	ctx := context.Background()
	h := vectorHeaders(t).loose[0]
	hash, hdr := h.BlockHash(), hex.EncodeToString(h[:])
	f := parseVector(t, "hello-world.txt.ots")
	digest := sha256.Sum256(readVector(t, "hello-world.txt"))

	esplora := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/block-height/358391":
			w.Write([]byte(hash))
		case "/api/block/" + hash + "/header":
			w.Write([]byte(hdr))
		default:
			http.NotFound(w, r)
		}
	}))
	defer esplora.Close()
	rpc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Method string `json:"method"`
			Params []any  `json:"params"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		switch req.Method {
		case "getblockhash":
			json.NewEncoder(w).Encode(map[string]any{"result": hash, "error": nil})
		case "getblockheader":
			json.NewEncoder(w).Encode(map[string]any{"result": hdr, "error": nil})
		}
	}))
	defer rpc.Close()

	for name, src := range map[string]HeaderSource{
		"esplora":     Esplora{URL: esplora.URL + "/api"},
		"bitcoin rpc": BitcoinRPC{URL: rpc.URL},
	} {
		t.Run(name, func(t *testing.T) {
			rep, err := Verify(ctx, f, digest[:], src)
			if err != nil || rep.Err() != nil || rep.Verified[0].Height != 358391 {
				t.Fatalf("got %+v %v %v", rep, err, rep.Err())
			}
		})
	}
	t.Run("a source whose header does not match its hash", func(t *testing.T) {
		liar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/header") {
				w.Write([]byte(strings.Repeat("00", 80)))
				return
			}
			w.Write([]byte(hash))
		}))
		defer liar.Close()
		rep, _ := Verify(ctx, f, digest[:], Esplora{URL: liar.URL})
		if err := rep.Err(); err == nil || !strings.Contains(err.Error(), "hashes to") {
			t.Fatalf("got %v", err)
		}
	})
}
