// Package otstest provides a stand-in for the public OpenTimestamps
// calendars and for Bitcoin, neither of which can be reached from the
// machines Docket is tested on.
//
// Calendar speaks the public calendar protocol on 127.0.0.1 (POST /digest,
// GET /timestamp/<hex>) and answers as opentimestamps-server does: a
// submitted digest is committed to with the calendar's time and a nonce and
// attested as pending; Mine then anchors every pending commitment in a
// synthetic Bitcoin block whose merkle root commits to them and whose
// header carries a valid proof of work at the lowest difficulty (regtest's
// nBits 0x207fffff). The headers it mined are what an offline verifier is
// given. It does not model calendars' aggregation delays, transaction fees,
// reorganisations or real Bitcoin difficulty.
package otstest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evidence-parity/docket/anchors/ots"
)

// Calendar is the stand-in calendar server.
type Calendar struct {
	URL string

	srv *httptest.Server

	mu       sync.Mutex
	pending  [][]byte          // commitments not yet mined
	upgrades map[string][]byte // hex commitment -> serialized upgrade
	chain    *Chain
	down     bool
	requests int
}

// Chain is a synthetic Bitcoin chain that calendars mine their blocks on.
type Chain struct {
	mu      sync.Mutex
	headers []ots.Header
}

// StartHeight is the height of a Chain's first block.
const StartHeight = 900000

// mine appends a block committing to merkleRoot and returns its height.
func (ch *Chain) mine(merkleRoot []byte) uint64 {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	var prev [32]byte
	if n := len(ch.headers); n > 0 {
		prev = ch.headers[n-1].Hash()
	}
	ch.headers = append(ch.headers, MineHeader(prev, merkleRoot, time.Now()))
	return uint64(StartHeight + len(ch.headers) - 1)
}

// Headers is the headers file of every block mined so far, in the format
// `docket verify ots --bitcoin-headers` reads: "HEIGHT HEX" per line.
func (ch *Chain) Headers() string {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	var b strings.Builder
	for i, h := range ch.headers {
		fmt.Fprintf(&b, "%d %s\n", StartHeight+i, hex.EncodeToString(h[:]))
	}
	return b.String()
}

// NewCalendar starts a calendar on 127.0.0.1 that mines on chain (a chain
// of its own when nil) and stops it when the test ends.
func NewCalendar(t testing.TB, chain *Chain) *Calendar {
	if chain == nil {
		chain = &Chain{}
	}
	c := &Calendar{upgrades: map[string][]byte{}, chain: chain}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	c.URL = c.srv.URL
	t.Cleanup(c.srv.Close)
	return c
}

// SetDown makes the calendar answer 503 to everything (down == true) or
// serve again.
func (c *Calendar) SetDown(down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = down
}

// Requests counts the requests served so far.
func (c *Calendar) Requests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests
}

func (c *Calendar) serve(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests++
	if c.down {
		http.Error(w, "calendar down", http.StatusServiceUnavailable)
		return
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/digest":
		digest, err := io.ReadAll(io.LimitReader(r.Body, 65))
		if err != nil || len(digest) == 0 || len(digest) > 64 {
			http.Error(w, "digest must be 1 to 64 bytes", http.StatusBadRequest)
			return
		}
		b, err := c.commit(digest)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(b)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/timestamp/"):
		b, ok := c.upgrades[strings.TrimPrefix(r.URL.Path, "/timestamp/")]
		if !ok {
			http.Error(w, "Pending confirmation in Bitcoin blockchain", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(b)
	default:
		http.NotFound(w, r)
	}
}

// commit answers a submission as a calendar does: prepend the time,
// append a nonce, attest pending.
func (c *Calendar) commit(digest []byte) ([]byte, error) {
	t := ots.New(digest)
	var now [4]byte
	binary.BigEndian.PutUint32(now[:], uint32(time.Now().Unix()))
	n, err := t.Add(ots.Prepend(now[:]))
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, 8)
	rand.Read(nonce)
	if n, err = n.Add(ots.Append(nonce)); err != nil {
		return nil, err
	}
	a, err := ots.NewPending(c.URL)
	if err != nil {
		return nil, err
	}
	n.Attest(a)
	c.pending = append(c.pending, n.Msg)
	return t.Serialize()
}

// Mine anchors every pending commitment in a new synthetic block and
// returns its height; a calendar then answers upgrades for them.
func (c *Calendar) Mine() (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) == 0 {
		return 0, fmt.Errorf("nothing pending")
	}
	// Each commitment is hashed into a leaf; the leaves form a binary tree
	// whose root is the block's merkle root.
	type path struct {
		stamp *ots.Timestamp
		tip   *ots.Timestamp
	}
	paths := make([]path, len(c.pending))
	level := make([][]byte, len(c.pending))
	owners := make([][]int, len(c.pending))
	for i, cm := range c.pending {
		st := ots.New(cm)
		tip, _ := st.Add(ots.SHA256)
		paths[i] = path{st, tip}
		level[i] = tip.Msg
		owners[i] = []int{i}
	}
	for len(level) > 1 {
		var next [][]byte
		var nextOwners [][]int
		for i := 0; i < len(level); i += 2 {
			if i+1 == len(level) {
				next, nextOwners = append(next, level[i]), append(nextOwners, owners[i])
				continue
			}
			l, r := level[i], level[i+1]
			for _, o := range owners[i] {
				tip, _ := paths[o].tip.Add(ots.Append(r))
				paths[o].tip, _ = tip.Add(ots.SHA256)
			}
			for _, o := range owners[i+1] {
				tip, _ := paths[o].tip.Add(ots.Prepend(l))
				paths[o].tip, _ = tip.Add(ots.SHA256)
			}
			sum := sha256.Sum256(append(append([]byte{}, l...), r...))
			next = append(next, sum[:])
			nextOwners = append(nextOwners, append(append([]int{}, owners[i]...), owners[i+1]...))
		}
		level, owners = next, nextOwners
	}
	height := c.chain.mine(level[0])
	for i, p := range paths {
		p.tip.Attest(ots.NewBitcoin(height))
		b, err := p.stamp.Serialize()
		if err != nil {
			return 0, err
		}
		c.upgrades[hex.EncodeToString(c.pending[i])] = b
	}
	c.pending = nil
	return height, nil
}

// MineHeader builds a block header with merkleRoot whose proof of work
// meets the lowest difficulty (nBits 0x207fffff).
func MineHeader(prev [32]byte, merkleRoot []byte, at time.Time) ots.Header {
	var h ots.Header
	binary.LittleEndian.PutUint32(h[0:4], 0x20000000)
	copy(h[4:36], prev[:])
	copy(h[36:68], merkleRoot)
	binary.LittleEndian.PutUint32(h[68:72], uint32(at.Unix()))
	binary.LittleEndian.PutUint32(h[72:76], 0x207fffff)
	for nonce := uint32(0); ; nonce++ {
		binary.LittleEndian.PutUint32(h[76:80], nonce)
		if h.CheckProofOfWork() == nil {
			return h
		}
	}
}

// Chain is the chain the calendar mines on.
func (c *Calendar) Chain() *Chain { return c.chain }

// ParsedHeaders is the chain's headers as a verifier takes them, accepting
// the chain's lowest difficulty, which real Bitcoin headers never have.
func (ch *Chain) ParsedHeaders() *ots.Headers {
	hs, err := ots.ParseHeaders(strings.NewReader(ch.Headers()))
	if err != nil {
		panic(err) // the chain writes what ParseHeaders reads
	}
	hs.AllowLowDifficulty = true
	return hs
}
