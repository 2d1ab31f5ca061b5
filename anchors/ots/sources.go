package ots

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Esplora is a HeaderSource backed by an Esplora HTTP API (the API of
// blockstream.info and mempool.space) at a URL the user supplies, e.g.
// https://blockstream.info/api.
type Esplora struct {
	URL  string
	HTTP *http.Client
}

// HeaderAt fetches the hash of the block at height, then its header, and
// checks that the header hashes to that block hash.
func (e Esplora) HeaderAt(ctx context.Context, height uint64, _ []byte) (Header, error) {
	base := strings.TrimSuffix(e.URL, "/")
	hashHex, err := httpText(ctx, e.HTTP, base+"/block-height/"+strconv.FormatUint(height, 10))
	if err != nil {
		return Header{}, fmt.Errorf("esplora: block %d: %w", height, err)
	}
	hdrHex, err := httpText(ctx, e.HTTP, base+"/block/"+hashHex+"/header")
	if err != nil {
		return Header{}, fmt.Errorf("esplora: block %d: %w", height, err)
	}
	return checkedHeader(height, hashHex, hdrHex)
}

// BitcoinRPC is a HeaderSource backed by a Bitcoin Core JSON-RPC endpoint
// the user supplies (credentials, if any, in the URL:
// http://user:pass@127.0.0.1:8332).
type BitcoinRPC struct {
	URL  string
	HTTP *http.Client
}

// HeaderAt asks the node for getblockhash(height), then
// getblockheader(hash, false), and checks that they agree.
func (b BitcoinRPC) HeaderAt(ctx context.Context, height uint64, _ []byte) (Header, error) {
	var hashHex, hdrHex string
	if err := b.call(ctx, "getblockhash", []any{height}, &hashHex); err != nil {
		return Header{}, fmt.Errorf("bitcoin rpc: block %d: %w", height, err)
	}
	if err := b.call(ctx, "getblockheader", []any{hashHex, false}, &hdrHex); err != nil {
		return Header{}, fmt.Errorf("bitcoin rpc: block %d: %w", height, err)
	}
	return checkedHeader(height, hashHex, hdrHex)
}

func (b BitcoinRPC) call(ctx context.Context, method string, params []any, out any) error {
	body, _ := json.Marshal(map[string]any{"jsonrpc": "1.0", "id": "docket", "method": method, "params": params})
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client(b.HTTP).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&r); err != nil {
		return fmt.Errorf("%s: HTTP %d: %w", method, resp.StatusCode, err)
	}
	if r.Error != nil {
		return fmt.Errorf("%s: %s (code %d)", method, r.Error.Message, r.Error.Code)
	}
	return json.Unmarshal(r.Result, out)
}

func client(c *http.Client) *http.Client {
	if c != nil {
		return c
	}
	return http.DefaultClient
}

func httpText(ctx context.Context, hc *http.Client, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client(hc).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", err
	}
	if resp.StatusCode == http.StatusNotFound {
		return "", ErrHeaderMissing
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d from %s", resp.StatusCode, url)
	}
	return strings.TrimSpace(string(b)), nil
}

// checkedHeader decodes a header and checks it hashes to the block hash
// the source named for the height.
func checkedHeader(height uint64, hashHex, hdrHex string) (Header, error) {
	raw, err := hex.DecodeString(hdrHex)
	if err != nil || len(raw) != HeaderSize {
		return Header{}, fmt.Errorf("block %d: the source's header is not %d bytes of hex", height, HeaderSize)
	}
	h := Header(raw)
	if h.BlockHash() != strings.ToLower(hashHex) {
		return Header{}, fmt.Errorf("block %d: the source's header hashes to %s, not the block hash %s it gave", height, h.BlockHash(), hashHex)
	}
	return h, nil
}
