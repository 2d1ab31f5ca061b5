package graph

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/graph/generated"
	"github.com/evidence-parity/docket/graph/model"
)

// Limits bound what one request may ask for.
type Limits struct {
	// Complexity is the largest query cost; list fields cost their page
	// size times their children (default 5,000).
	Complexity int
	// Allow, if set, counts an operation over a websocket against its
	// caller's rate (RateKey's key) and reports whether it may run; HTTP
	// requests are counted before they reach the handler.
	Allow func(key string) bool
}

// NewHandler returns the GraphQL endpoint: POST, GET and websocket
// transports, a query cache, complexity limits, and authentication of every
// operation before it runs.
func NewHandler(r *Resolver, logger *slog.Logger, lim Limits) http.Handler {
	if lim.Complexity == 0 {
		lim.Complexity = 5000
	}
	if logger == nil {
		logger = slog.Default()
	}
	cfg := generated.Config{Resolvers: r}
	// A list's cost is its page size times its items'.
	cfg.Complexity.Query.Changes = func(child int, first *int, _ *string, _ *model.ChangeFilter) int {
		return 1 + pageSize(first, 20)*child
	}
	cfg.Complexity.Query.Sample = func(child int, _, _ time.Time, size *int, _ string) int {
		return 1 + pageSize(size, 25)*child
	}
	cfg.Complexity.Query.Exceptions = func(child int, _ *bool, first *int) int {
		return 1 + pageSize(first, 50)*child
	}
	cfg.Complexity.Query.Sessions = func(child int, _, _ *string, _ *bool, first *int) int {
		return 1 + pageSize(first, 50)*child
	}
	cfg.Complexity.Query.Checkpoints = func(child int, last *int) int {
		return 1 + pageSize(last, 10)*child
	}
	srv := handler.New(generated.NewExecutableSchema(cfg))
	// The default websocket implementation refuses cross-origin upgrades.
	srv.AddTransport(transport.Websocket{
		KeepAlivePingInterval: 10 * time.Second,
		// A connection opens for a caller: the token in connection_init's
		// payload, else the upgrade request's. Its operations are
		// authenticated again one by one.
		InitFunc: func(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
			header := p.Authorization()
			if header == "" {
				header, _ = ctx.Value(upgradeAuthKey{}).(string)
			}
			c, err := r.authenticate(ctx, header)
			if err != nil {
				return ctx, nil, err
			}
			return context.WithValue(ctx, websocketKey{}, c.key), nil, nil
		},
	})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.Use(extension.Introspection{})
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](100)})
	srv.Use(extension.FixedComplexityLimit(lim.Complexity))
	srv.Use(shapeLimit{MaxDepth: 12, MaxFields: 300})
	srv.SetErrorPresenter(func(ctx context.Context, err error) *gqlerror.Error {
		return present(ctx, err, logger)
	})
	srv.SetRecoverFunc(func(ctx context.Context, v any) error {
		logger.Error("panic in resolver", "panic", v)
		return errors.New("internal error")
	})
	srv.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		opened, ws := ctx.Value(websocketKey{}).(string)
		o, ok := ctx.Value(outcomeKey{}).(authOutcome)
		if !ok || ws {
			// A websocket's operations are authenticated one by one: the
			// connection outlives the credential it was opened with.
			// As the connection's init: connection_init's token first.
			header := transport.GetInitPayload(ctx).Authorization()
			if header == "" {
				header = graphql.GetOperationContext(ctx).Headers.Get("Authorization")
			}
			o.caller, o.err = r.authenticate(ctx, header)
			// A subscription checks it again while it streams.
			ctx = context.WithValue(ctx, streamAuthKey{}, header)
		}
		refuse := func(err error, code map[string]any) graphql.ResponseHandler {
			return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{{Message: err.Error(), Extensions: code}}})
		}
		if ws {
			// Counted as requests are, a refused one against whom the
			// connection was opened for.
			key := o.caller.key
			if o.err != nil {
				key = opened
			}
			if lim.Allow != nil && !lim.Allow(key) {
				return refuse(errors.New("too many requests: over the rate limit, try again shortly"), map[string]any{"code": "RATE_LIMITED"})
			}
		}
		if o.err != nil {
			return refuse(o.err, code(o.err))
		}
		if op := graphql.GetOperationContext(ctx).Operation; ws && op != nil && op.Operation == ast.Mutation {
			// Over a websocket a mutation would pass the body limit and the
			// UTF-8 check, which see HTTP requests.
			return refuse(errors.New("mutations are taken over POST, not over a websocket"), map[string]any{"code": "INVALID_INPUT"})
		}
		return next(context.WithValue(ctx, callerKey{}, o.caller))
	})
	return authenticated(r, logger, checkInput(withUpgradeAuth(srv)))
}

// authenticated refuses an HTTP request whose bearer token is missing or
// authenticates no one before anything reads its body or parses its
// query: an anonymous caller learns nothing of the schema, not even from a
// validation error's suggestions ("Did you mean …?"). The outcome is the
// boundary's (AuthenticateRequest), or found here for a handler mounted
// without it. Websocket upgrades pass: their connection's init
// authenticates them.
func authenticated(r *Resolver, logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Upgrade") != "" {
			next.ServeHTTP(w, req)
			return
		}
		o, ok := req.Context().Value(outcomeKey{}).(authOutcome)
		if !ok {
			o.caller, o.err = r.authenticate(req.Context(), req.Header.Get("Authorization"))
			req = req.WithContext(context.WithValue(req.Context(), outcomeKey{}, o))
		}
		switch {
		case o.err == nil:
			next.ServeHTTP(w, req)
		case errors.Is(o.err, domain.ErrUnauthenticated):
			w.Header().Set("WWW-Authenticate", "Bearer")
			WriteError(w, http.StatusUnauthorized, "UNAUTHENTICATED", o.err.Error())
		default:
			logger.Error("authentication failed", "err", o.err)
			WriteError(w, http.StatusInternalServerError, "INTERNAL", "internal error")
		}
	})
}

// pageSize is the number of items a list argument asks for, or its
// default; a negative one counts as none (the resolver refuses it).
func pageSize(n *int, def int) int {
	if n == nil {
		return def
	}
	return max(*n, 0)
}

// websocketKey marks the context of a websocket connection's operations;
// its value is the rate key of the caller the connection was opened for.
type websocketKey struct{}

// streamAuthKey holds the Authorization header a websocket operation was
// authenticated with, for a subscription to check it again as it streams.
type streamAuthKey struct{}

// upgradeAuthKey holds a websocket upgrade request's Authorization header
// for the connection's init.
type upgradeAuthKey struct{}

// withUpgradeAuth keeps an upgrade request's Authorization header where
// the websocket transport's init can read it.
func withUpgradeAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := r.Header.Get("Authorization"); h != "" && r.Header.Get("Upgrade") != "" {
			r = r.WithContext(context.WithValue(r.Context(), upgradeAuthKey{}, h))
		}
		next.ServeHTTP(w, r)
	})
}

// code maps an error to its extensions.code, once, here at the boundary.
func code(err error) map[string]any {
	for _, c := range []struct {
		err  error
		code string
	}{
		{domain.ErrUnauthenticated, "UNAUTHENTICATED"},
		{domain.ErrForbidden, "FORBIDDEN"},
		{domain.ErrInvalidInput, "INVALID_INPUT"},
		{domain.ErrInvalidScope, "INVALID_INPUT"},
		{domain.ErrInvalidResource, "INVALID_INPUT"},
		{domain.ErrIncompletePlan, "INVALID_INPUT"},
		{domain.ErrNotFound, "NOT_FOUND"},
		{domain.ErrConflict, "CONFLICT"},
		{domain.ErrOutOfScope, "OUT_OF_SCOPE"},
		{domain.ErrFrozen, "FROZEN"},
	} {
		if errors.Is(err, c.err) {
			return map[string]any{"code": c.code}
		}
	}
	if errors.Is(err, domain.ErrGateFailed) {
		// The change's state refuses the promotion: a conflict, and why.
		return map[string]any{"code": "CONFLICT", "reason": "GATE_FAILED"}
	}
	return map[string]any{"code": "INTERNAL"}
}

// present shapes an error for the client: known outcomes keep their
// message; anything else becomes INTERNAL and its detail is only logged.
func present(ctx context.Context, err error, logger *slog.Logger) *gqlerror.Error {
	var gerr *gqlerror.Error
	if errors.As(err, &gerr) && gerr.Extensions != nil {
		// gqlgen's own parse and validation failures are invalid input.
		switch c := gerr.Extensions["code"]; c {
		case "GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "COMPLEXITY_LIMIT_EXCEEDED":
			gerr.Extensions = map[string]any{"code": "INVALID_INPUT", "graphqlCode": c}
		}
		return gerr
	}
	e := graphql.DefaultErrorPresenter(ctx, err)
	ext := code(err)
	if ext["code"] == "INTERNAL" {
		if errors.As(err, &gerr) && gerr.Rule != "" || e.Path == nil {
			// A parse or validation error from gqlgen itself.
			e.Extensions = map[string]any{"code": "INVALID_INPUT"}
			return e
		}
		logger.Error("internal error", "path", e.Path.String(), "err", err)
		e.Message = "internal error"
	}
	e.Extensions = ext
	return e
}
