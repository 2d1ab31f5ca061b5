// Package client is a small client of Docket's GraphQL API, for the agent
// side: the agent CLI and the tool-call hooks. It speaks plain HTTP POST
// with a bearer credential and reports the server's error codes.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Client calls one Docket server.
type Client struct {
	// URL is the server's base URL (http://127.0.0.1:8080).
	URL string
	// Token is the bearer credential: an agent key, a session credential
	// or a principal token.
	Token string
	// HTTP is the client requests go through (default: one with Timeout).
	HTTP *http.Client
	// Timeout bounds each call (default 10s).
	Timeout time.Duration
}

// Error is an error the server answered with.
type Error struct {
	Code    string // extensions.code: OUT_OF_SCOPE, UNAUTHENTICATED, …
	Message string
}

func (e *Error) Error() string { return e.Message + " (" + e.Code + ")" }

// ErrUnreachable wraps failures to reach the server at all.
var ErrUnreachable = errors.New("docket server unreachable")

// Do runs a GraphQL operation and decodes its data into out.
func (c *Client) Do(ctx context.Context, query string, vars map[string]any, out any) error {
	if c.URL == "" {
		return fmt.Errorf("%w: no server URL (set DOCKET_URL or --url)", ErrUnreachable)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.URL, "/")+"/graphql", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	var r struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Message    string `json:"message"`
			Extensions struct {
				Code string `json:"code"`
			} `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("%w: HTTP %d, not a GraphQL answer: %.200s", ErrUnreachable, resp.StatusCode, raw)
	}
	if len(r.Errors) > 0 {
		return &Error{Code: r.Errors[0].Extensions.Code, Message: r.Errors[0].Message}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(r.Data, out)
}
