package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"
	"github.com/spf13/cobra"

	"github.com/evidence-parity/docket/anchors/anchoring"
	kmssigner "github.com/evidence-parity/docket/anchors/kms"
	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/domain/clerk"
	"github.com/evidence-parity/docket/graph"
	"github.com/evidence-parity/docket/portal"
	"github.com/evidence-parity/docket/projections"
)

func newServeCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the Docket server: GraphQL API at /graphql, /healthz, /readyz",
		Long: `Runs the server on the embedded default: the SQLite ledger and local key under
--data (created on first use). The read models follow the ledger live.

With --esdb URL the ledger's events and checkpoints are in EventStoreDB /
KurrentDB; --data then holds the key, this node's derived Merkle tree (rebuilt
from EventStoreDB when missing) and the read models.`,
		Args: cobra.NoArgs,
	}
	data := dataFlag(c)
	listen := c.Flags().String("listen", envOr("DOCKET_LISTEN", "127.0.0.1:8080"), "address to listen on (env DOCKET_LISTEN)")
	issuer := c.Flags().String("oidc-issuer", envOr("DOCKET_OIDC_ISSUER", ""), "accept OIDC ID tokens from this issuer (env DOCKET_OIDC_ISSUER)")
	clientID := c.Flags().String("oidc-client-id", envOr("DOCKET_OIDC_CLIENT_ID", ""), "the audience ID tokens must carry (env DOCKET_OIDC_CLIENT_ID)")
	claim := c.Flags().String("oidc-claim", envOr("DOCKET_OIDC_CLAIM", "email"), "the ID token claim that names the principal (env DOCKET_OIDC_CLAIM)")
	secret := c.Flags().String("oidc-client-secret", envOr("DOCKET_OIDC_CLIENT_SECRET", ""), "the client secret for the portal's sign-in with the issuer (authorization code flow); without it the portal takes tokens only (env DOCKET_OIDC_CLIENT_SECRET)")
	rate := c.Flags().Float64("rate-limit", defaultRateLimit, "requests per second per principal, agent or session, whichever token it presents (per address without a valid one); 0 turns it off")
	emergency := c.Flags().Duration("emergency-window", domain.DefaultPolicy.EmergencyWindow, "how long an emergency change may run before its approval; past it, an unapproved one gets an overdue exception")
	anchorEvery := c.Flags().Duration("anchor-interval", 10*time.Minute, "submit the latest checkpoint to OpenTimestamps calendars this often, when the log grew; 0 turns anchoring off")
	upgradeEvery := c.Flags().Duration("upgrade-interval", 10*time.Minute, "ask the calendars for Bitcoin attestations of pending anchors this often")
	anchorF := addAnchorFlags(c)
	esdbF := addESDBFlags(c)
	c.RunE = func(c *cobra.Command, _ []string) error {
		ctx := c.Context()
		logger, logs := newServerLogger(os.Stderr)
		defer logs.Close() // runs last: after the server, the read models and the ledger have stopped
		slog.SetDefault(logger)
		serverRuntime()
		var store serverLedger
		var kms *kmssigner.Signer
		if esdbF.set() {
			signer, k, err := checkpointSigner(ctx, *data, true)
			if err != nil {
				return err
			}
			es, err := esdbF.open(ctx, *data, signer, nil)
			if err != nil {
				return err
			}
			store, kms = es, k
			logger.Info("ledger in EventStoreDB", "prefix", *esdbF.prefix, "local index", es.Path())
		} else {
			s, k, err := openWritableKMS(ctx, *data)
			if err != nil {
				return err
			}
			store, kms = s, k
		}
		defer store.Close()
		rd := &readiness{store: store, kms: kms}
		if kms == nil {
			logger.Warn("checkpoints are signed with a local key file, which is not externally custodied; use --kms-key-id in production")
		} else {
			logger.Info("checkpoints are signed through AWS KMS", "key", kms.KeyARN())
		}
		if *anchorEvery > 0 {
			an, err := anchorF.anchorer(*data, store, anchoring.Config{Interval: *anchorEvery, UpgradeInterval: *upgradeEvery, Logger: logger})
			if err != nil {
				return err
			}
			rd.anchorer = an
			anchorCtx, stopAnchoring := context.WithCancel(ctx)
			defer stopAnchoring()
			go an.Run(anchorCtx)
			logger.Info("anchoring checkpoints", "every", *anchorEvery, "calendars", an.Calendars())
		}
		proj, err := projections.Open(ctx, projectionsPath(*data), store, logger)
		if err != nil {
			return err
		}
		defer proj.Close()
		if current, err := proj.Current(ctx); err != nil {
			return err
		} else if !current {
			// Stored by a build that computed them differently: rebuilt
			// before anything reads them (the API, the portal's samples).
			logger.Info("read models stored by another build: rebuilding them before serving")
			start := time.Now()
			if err := proj.Rebuild(ctx); err != nil {
				return fmt.Errorf("rebuild the read models: %w", err)
			}
			logger.Info("read models rebuilt", "took", time.Since(start).Round(time.Millisecond))
		}
		projCtx, stopProj := context.WithCancel(context.WithoutCancel(ctx))
		defer stopProj()
		projDone := make(chan error, 1)
		go func() { projDone <- proj.Run(projCtx) }()

		if *emergency <= 0 {
			return usageErr("--emergency-window must be positive")
		}
		k := clerk.New(store, clerk.Config{Policy: domain.Policy{EmergencyWindow: *emergency}})
		sweepCtx, stopSweep := context.WithCancel(ctx)
		swept := make(chan struct{})
		go func() { defer close(swept); sweepEmergencies(sweepCtx, k, proj, logger) }()
		defer func() { stopSweep(); <-swept }() // before the store closes
		var auth graph.Authenticator = k
		var signIn portal.OIDC
		if *issuer != "" {
			o, err := newOIDCAuth(ctx, *issuer, *clientID, *claim, k)
			if err != nil {
				return err
			}
			auth = o
			if *secret != "" {
				if signIn, err = newPortalOIDC(ctx, *issuer, *clientID, *secret, o); err != nil {
					return err
				}
			}
		}
		pages, err := newPortal(ctx, *data, store, proj, k, signIn, logger)
		if err != nil {
			return err
		}
		e := newRouter(store, &graph.Resolver{Clerk: k, Auth: auth, Log: store, Projections: proj, Prover: store}, logger, *rate, rd.check, pages)

		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			return usageErr("listen %s: %v", *listen, err)
		}
		srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute}
		fmt.Fprintf(c.OutOrStdout(), "docket listening on http://%s (ledger %s, origin %s)\n", ln.Addr(), store.Path(), store.Origin())
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		select {
		case err := <-served:
			stopProj()
			<-projDone
			return err
		case <-ctx.Done():
		}
		// Graceful: in-flight requests finish, the emergency sweep stops,
		// then the projections flush.
		logger.Info("shutting down")
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			logger.Error("shutdown", "err", err)
		}
		stopSweep()
		<-swept
		stopProj()
		if err := <-projDone; err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("projections", "err", err)
		}
		// The read models take in everything written until now, whatever
		// the live projection had not yet been handed when it stopped.
		if err := proj.CatchUp(shutdownCtx); err != nil {
			logger.Error("projections: final catch-up", "err", err)
		}
		return nil
	}
	return c
}

// defaultRateLimit is the requests per second allowed per bearer token.
const defaultRateLimit = 500

// Runtime settings of the server, each unless its environment variable
// (GOGC, GOMEMLIMIT, GOMAXPROCS) sets it.
//
// Garbage collector: the server's live heap is small (a few MB under load
// on a fresh ledger) while every request allocates tens of KB, so at the
// default GOGC=100 the collector ran ~40 times a second and took ~9% of the
// CPU of a recordAction load. GOGC=400 collects a fifth as often; the soft
// memory limit (the budget is 300 MB) makes it collect harder, never fail,
// as the heap nears it.
//
// Processors: one more P than CPUs. The ledger writer spends much of its
// time in fsync and pwrite, and a goroutine in a system call keeps its P
// until the runtime's monitor takes it back, which under this load it often
// does only after the call returns (an execution trace of the recordAction
// benchmark showed the writer holding a P in system calls for 45% of the
// run, while request goroutines waited to run with a core idle). The spare
// P runs them meanwhile: about 5% more recordActions a second on 2 cores,
// CPU per request unchanged; a second spare P made it worse. Setting it
// ends the runtime's tracking of a container's CPU limit while running (the
// limit at start-up is still what CPUs counts).
const (
	serverGCPercent   = 400
	serverMemoryLimit = 256 << 20
)

// serverRuntime applies the settings above, once per process.
var serverRuntime = sync.OnceFunc(func() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serverGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(serverMemoryLimit)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + 1)
	}
})

// maxBody is the largest request body the server reads.
const maxBody = 4 << 20

// newRouter is the server's HTTP surface: /graphql, /metrics, /healthz and
// /readyz behind recovery, request ids, request logs, secure headers and a
// body limit.
//
// ready answers /readyz: a detail text and whether the server is ready (nil:
// the checkpoint signer's state alone).
//
// pages, if not nil, serves every other path (the portal).
func newRouter(store serverLedger, r *graph.Resolver, logger *slog.Logger, rate float64, ready func(context.Context) (string, bool), pages http.Handler) *echo.Echo {
	var limits graph.Limits
	var rates *middleware.RateLimiterMemoryStore
	if rate > 0 {
		rates = middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{Rate: rate, Burst: int(2 * rate), ExpiresIn: 3 * time.Minute})
		limits.Allow = func(key string) bool { ok, _ := rates.Allow(key); return ok }
	}
	gql := graph.NewHandler(r, logger, limits)
	m := newMetrics(store)
	e := echo.New()
	fallback := e.HTTPErrorHandler
	e.HTTPErrorHandler = func(c *echo.Context, err error) {
		// A request to /graphql refused before GraphQL ran (too large,
		// over its rate) is answered in GraphQL's shape too.
		var sc echo.HTTPStatusCoder
		if c.Path() != "/graphql" || !errors.As(err, &sc) {
			fallback(c, err)
			return
		}
		if r, _ := echo.UnwrapResponse(c.Response()); r != nil && r.Committed {
			return
		}
		switch sc.StatusCode() {
		case http.StatusRequestEntityTooLarge:
			graph.WriteError(c.Response(), http.StatusRequestEntityTooLarge, "INVALID_INPUT", fmt.Sprintf("request body larger than %d MiB", maxBody>>20))
		case http.StatusTooManyRequests:
			graph.WriteError(c.Response(), http.StatusTooManyRequests, "RATE_LIMITED", "too many requests: over the rate limit, try again shortly")
		default:
			fallback(c, err)
		}
	}
	e.Use(middleware.Recover(), middleware.RequestID(), m.observe(logger), middleware.Secure(), middleware.BodyLimit(maxBody))
	// Authentication at the boundary, before the rate limiter counts the
	// request against whoever it authenticates as.
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			c.SetRequest(r.AuthenticateRequest(c.Request()))
			return next(c)
		}
	})
	if rate > 0 {
		e.Use(middleware.RateLimiterWithConfig(middleware.RateLimiterConfig{
			Store: rates,
			// Per principal, agent or session, whichever tokens it
			// presents; a request without a valid one, per address.
			IdentifierExtractor: func(c *echo.Context) (string, error) {
				if key, ok := graph.RateKey(c.Request().Context()); ok {
					return key, nil
				}
				return "address:" + c.RealIP(), nil
			},
		}))
	}
	e.GET("/metrics", echo.WrapHandler(m.handler()))
	e.Any("/graphql", echo.WrapHandler(gql))
	e.GET("/healthz", func(c *echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	if pages != nil {
		e.Any("/*", echo.WrapHandler(pages))
	}
	e.GET("/readyz", func(c *echo.Context) error {
		if ready == nil {
			ready = (&readiness{store: store}).check
		}
		detail, ok := ready(c.Request().Context())
		if !ok {
			return c.String(http.StatusServiceUnavailable, "not ready\n"+detail)
		}
		return c.String(http.StatusOK, "ready\n"+detail)
	})
	return e
}
