package ots

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// The OpenTimestamps calendar protocol (opentimestamps-server, and
// python-opentimestamps core/calendar.py):
//
//	POST <calendar>/digest            body: the raw digest
//	  200: a serialized timestamp of the digest (no magic), ending in a
//	       PendingAttestation naming the calendar
//	GET  <calendar>/timestamp/<hex>   <hex>: a pending attestation's message
//	  200: a serialized timestamp of that message, ending in a Bitcoin
//	       attestation once the calendar's transaction is confirmed
//	  404: still pending
const acceptOTS = "application/vnd.opentimestamps.v1"

// DefaultMaxResponse bounds a calendar's answer, as the reference client
// does (10,000 bytes); a timestamp from a calendar is a few hundred bytes.
const DefaultMaxResponse = 10000

// ErrPending is returned by Client.Get while a calendar has not yet anchored
// a commitment.
var ErrPending = errors.New("pending")

// Client talks to OpenTimestamps calendars.
type Client struct {
	// HTTP is the client requests go through (default: http.DefaultClient
	// bounded by Timeout).
	HTTP *http.Client
	// Timeout bounds each request (default 10s).
	Timeout time.Duration
	// MaxResponse bounds each answer's size (default DefaultMaxResponse).
	MaxResponse int64
	// AllowHTTP permits http:// calendars; only tests against a calendar on
	// loopback set it. Otherwise calendars must be https://.
	AllowHTTP bool
	// Rand is the source of submission nonces (default crypto/rand).
	Rand io.Reader
}

// CheckCalendar checks a calendar URL: absolute, https (or http when
// allowHTTP), with a host and no credentials, query or fragment, and
// within the characters a pending attestation may name.
func CheckCalendar(raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("calendar %q: %w", raw, err)
	}
	switch {
	case u.Scheme != "https" && !(allowHTTP && u.Scheme == "http"):
		return fmt.Errorf("calendar %q: only https calendars are allowed", raw)
	case u.Host == "":
		return fmt.Errorf("calendar %q: no host", raw)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("calendar %q: credentials, query and fragment are not allowed", raw)
	}
	if err := checkURI(raw); err != nil {
		return fmt.Errorf("calendar %q: %w", raw, err)
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, calendar, path string, body []byte) (int, []byte, error) {
	if err := CheckCalendar(calendar, c.AllowHTTP); err != nil {
		return 0, nil, err
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(calendar, "/")+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", acceptOTS)
	req.Header.Set("User-Agent", "docket")
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	hc := http.Client{}
	if c.HTTP != nil {
		hc = *c.HTTP
	}
	// Calendars have no business redirecting: a redirect could downgrade
	// to http or send the request to a host nobody allowed.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("calendar %s: %w", calendar, err)
	}
	defer resp.Body.Close()
	limit := c.MaxResponse
	if limit <= 0 {
		limit = DefaultMaxResponse
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return 0, nil, fmt.Errorf("calendar %s: %w", calendar, err)
	}
	if int64(len(b)) > limit {
		return 0, nil, fmt.Errorf("calendar %s: answer exceeds %d bytes", calendar, limit)
	}
	return resp.StatusCode, b, nil
}

// Submit asks one calendar to timestamp node's message and merges its
// answer into node.
func (c *Client) Submit(ctx context.Context, calendar string, node *Timestamp) error {
	status, body, err := c.do(ctx, http.MethodPost, calendar, "/digest", node.Msg)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("calendar %s: submit answered %d", calendar, status)
	}
	t, err := ParseTimestamp(body, node.Msg)
	if err != nil {
		return fmt.Errorf("calendar %s: %w", calendar, err)
	}
	return node.Merge(t)
}

// Get asks a calendar for the upgrade of a commitment it attested as
// pending; it returns ErrPending while the calendar has none.
func (c *Client) Get(ctx context.Context, calendar string, commitment []byte) (*Timestamp, error) {
	status, body, err := c.do(ctx, http.MethodGet, calendar, "/timestamp/"+hex.EncodeToString(commitment), nil)
	if err != nil {
		return nil, err
	}
	switch status {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, fmt.Errorf("calendar %s: %w", calendar, ErrPending)
	default:
		return nil, fmt.Errorf("calendar %s: upgrade answered %d", calendar, status)
	}
	t, err := ParseTimestamp(body, commitment)
	if err != nil {
		return nil, fmt.Errorf("calendar %s: %w", calendar, err)
	}
	return t, nil
}

// Stamp starts a timestamp of digest: it commits to the digest with a fresh
// random nonce (so a calendar learns nothing about the digest) and submits
// the commitment to every calendar in parallel. It returns the proof with
// every answer merged, and the error of each calendar that failed; the
// proof is usable when at least one calendar answered.
func (c *Client) Stamp(ctx context.Context, digest [32]byte, calendars []string) (*File, map[string]error) {
	f := NewFile(digest)
	nonce := make([]byte, 16)
	rnd := c.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	if _, err := io.ReadFull(rnd, nonce); err != nil {
		failed := map[string]error{}
		for _, cal := range calendars {
			failed[cal] = fmt.Errorf("nonce: %w", err)
		}
		return f, failed
	}
	n, _ := f.Timestamp.Add(Append(nonce))
	commitment, _ := n.Add(SHA256)
	return f, c.SubmitAll(ctx, commitment, calendars)
}

// SubmitAll submits node to each calendar in parallel and merges the
// answers in calendar order, so the result does not depend on timing.
func (c *Client) SubmitAll(ctx context.Context, node *Timestamp, calendars []string) map[string]error {
	answers := make([]*Timestamp, len(calendars))
	errs := make([]error, len(calendars))
	var wg sync.WaitGroup
	for i, cal := range calendars {
		wg.Go(func() {
			part := New(node.Msg)
			if errs[i] = c.Submit(ctx, cal, part); errs[i] == nil {
				answers[i] = part
			}
		})
	}
	wg.Wait()
	failed := map[string]error{}
	for i, cal := range calendars {
		if errs[i] != nil {
			failed[cal] = errs[i]
			continue
		}
		if err := node.Merge(answers[i]); err != nil {
			failed[cal] = err
		}
	}
	return failed
}

// UpgradeResult is what an upgrade found.
type UpgradeResult struct {
	// Upgraded are the calendars whose answers were merged.
	Upgraded []string
	// Pending are the calendars that have not anchored yet.
	Pending []string
	// Errors are the calendars that failed or are not allowed.
	Errors map[string]error
}

// CalendarAllowed reports whether a pending attestation's calendar may be
// asked for its upgrade: it equals an allowed URL, or matches an allowed
// "https://*.domain" pattern, where * is one DNS label (the reference
// client's whitelist works the same way: pools answer with the backing
// calendar's URL, e.g. https://alice.btc.calendar.opentimestamps.org).
func CalendarAllowed(uri string, allowed []string) bool {
	u, err := url.Parse(uri)
	if err != nil || u.Host == "" {
		return false
	}
	for _, a := range allowed {
		if a == uri || strings.TrimSuffix(a, "/") == strings.TrimSuffix(uri, "/") {
			return true
		}
		scheme, rest, ok := strings.Cut(a, "://*.")
		if !ok || scheme != u.Scheme || u.Port() != "" || u.User != nil {
			continue
		}
		label, suffix, ok := strings.Cut(u.Hostname(), ".")
		if ok && label != "" && suffix == rest && (u.Path == "" || u.Path == "/") {
			return true
		}
	}
	return false
}

// Upgrade asks the calendar of every pending attestation in t for its
// upgrade and merges each answer into the node the attestation is on. Only
// calendars allowed are asked (see CalendarAllowed: a proof names its
// calendars, and a client must not fetch whatever URL a file names).
func (c *Client) Upgrade(ctx context.Context, t *Timestamp, allowed []string) UpgradeResult {
	res := UpgradeResult{Errors: map[string]error{}}
	type job struct {
		node  *Timestamp
		uri   string
		depth int
	}
	var jobs []job
	var walk func(n *Timestamp, depth int)
	walk = func(n *Timestamp, depth int) {
		upgraded := n.Complete() // this calendar's answer is merged already
		for _, b := range n.Branches {
			if b.Attestation != nil && b.Attestation.Kind == Pending && !upgraded {
				jobs = append(jobs, job{n, b.Attestation.URI, depth})
			}
			if b.Next != nil {
				walk(b.Next, depth+1)
			}
		}
	}
	walk(t, 1)
	answers := make([]*Timestamp, len(jobs))
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		if !CalendarAllowed(j.uri, allowed) {
			errs[i] = fmt.Errorf("calendar %s is not an allowed calendar", j.uri)
			continue
		}
		wg.Go(func() { answers[i], errs[i] = c.Get(ctx, j.uri, j.node.Msg) })
	}
	wg.Wait()
	for i, j := range jobs {
		switch {
		case errors.Is(errs[i], ErrPending):
			res.Pending = append(res.Pending, j.uri)
		case errs[i] != nil:
			res.Errors[j.uri] = errs[i]
		default:
			// The merged proof must still be one Parse accepts.
			if d := answers[i].depth(); j.depth+d > MaxDepth {
				res.Errors[j.uri] = fmt.Errorf("calendar %s: its answer nests %d deep at depth %d, past the limit of %d", j.uri, d, j.depth, MaxDepth)
				continue
			}
			if err := j.node.Merge(answers[i]); err != nil {
				res.Errors[j.uri] = err
				continue
			}
			res.Upgraded = append(res.Upgraded, j.uri)
		}
	}
	return res
}
