package graph

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"unicode/utf8"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

// checkInput refuses, before gqlgen decodes it, a request whose body or
// query string is not valid UTF-8 (encoding/json would replace each bad
// byte with U+FFFD and the ledger would store text the client never sent),
// a POST body that is not JSON, and a mutation sent over GET. A POST body is read whole (the server's
// body limit bounds it) and handed on as read.
func checkInput(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.Body != nil {
			buf := bytes.NewBuffer(make([]byte, 0, max(0, min(r.ContentLength, 64<<10))+bytes.MinRead))
			if _, err := buf.ReadFrom(r.Body); err != nil {
				// The body limit's refusal (413), or a client that went away.
				status := http.StatusBadRequest
				var sc interface{ StatusCode() int }
				if errors.As(err, &sc) && sc.StatusCode() != 0 {
					status = sc.StatusCode()
				}
				WriteError(w, status, "INVALID_INPUT", "request body unreadable: "+err.Error())
				return
			}
			if !utf8.Valid(buf.Bytes()) {
				WriteError(w, http.StatusBadRequest, "INVALID_INPUT", "request body is not valid UTF-8")
				return
			}
			if !json.Valid(buf.Bytes()) {
				// Said here, gqlgen's transport would echo the whole body.
				WriteError(w, http.StatusBadRequest, "INVALID_INPUT", "request body is not valid JSON")
				return
			}
			r.Body = io.NopCloser(buf)
		}
		for _, vs := range r.URL.Query() {
			for _, v := range vs {
				if !utf8.ValidString(v) {
					WriteError(w, http.StatusBadRequest, "INVALID_INPUT", "query string is not valid UTF-8")
					return
				}
			}
		}
		if r.Method == http.MethodGet && mutates(r.URL.Query().Get("query")) {
			// gqlgen's GET transport refuses these too, without a code.
			WriteError(w, http.StatusMethodNotAllowed, "INVALID_INPUT", "mutations are taken over POST, not GET")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// mutates reports whether a GraphQL document holds a mutation (one that
// does not parse is left to gqlgen, which says why).
func mutates(query string) bool {
	doc, err := parser.ParseQuery(&ast.Source{Input: query})
	if err != nil {
		return false
	}
	for _, op := range doc.Operations {
		if op.Operation == ast.Mutation {
			return true
		}
	}
	return false
}

// WriteError answers a request refused before GraphQL ran (too large,
// not UTF-8, over its rate) in GraphQL's shape, so a client reads every
// refusal's extensions.code the same way.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"errors": []any{map[string]any{"message": message, "extensions": map[string]any{"code": code}}}})
}
