package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/evidence-parity/docket/ledger/sqlite"
)

// metrics are the server's Prometheus metrics, on their own registry.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.HistogramVec
}

func newMetrics(store serverLedger) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "docket_http_request_duration_seconds", Help: "HTTP requests by route and status.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route", "code"})
	size := func() float64 {
		n, _, _ := store.Head(context.Background())
		return float64(n)
	}
	m.reg.MustRegister(m.requests,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "docket_ledger_events", Help: "Events in the ledger (the Merkle tree size)."}, size),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "docket_checkpoint_failing", Help: "1 while checkpoint signing fails."}, func() float64 {
			if store.CheckpointErr() != nil {
				return 1
			}
			return 0
		}),
	)
	// The embedded store counts its group commits and its fsyncs.
	if st, ok := store.(interface{ Stats() sqlite.Stats }); ok {
		stats := func(f func(sqlite.Stats) uint64) func() float64 {
			return func() float64 { return float64(f(st.Stats())) }
		}
		m.reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "docket_ledger_commits_total", Help: "Group-commit transactions."}, stats(func(s sqlite.Stats) uint64 { return s.Commits })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "docket_ledger_appends_total", Help: "Append requests committed."}, stats(func(s sqlite.Stats) uint64 { return s.Appends })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "docket_ledger_fsyncs_total", Help: "Fsyncs of the write-ahead log that made committed batches durable."}, stats(func(s sqlite.Stats) uint64 { return s.Syncs })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "docket_ledger_fsync_seconds_total", Help: "Time spent in those fsyncs; divided by docket_ledger_fsyncs_total, the disk's mean latency."},
				func() float64 { return st.Stats().SyncTime.Seconds() }),
		)
	}
	return m
}

func (m *metrics) handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

// observe logs every request with its id and records its duration.
func (m *metrics) observe(logger *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			start := time.Now()
			err := next(c)
			code := http.StatusOK
			if r, uerr := echo.UnwrapResponse(c.Response()); uerr == nil && r.Status != 0 {
				code = r.Status
			}
			var he *echo.HTTPError
			if errors.As(err, &he) {
				code = he.Code
			}
			route := c.Path()
			if route == "" {
				route = "unmatched"
			}
			took := time.Since(start)
			m.requests.WithLabelValues(route, strconv.Itoa(code)).Observe(took.Seconds())
			// LogAttrs: typed attributes, not ...any, which boxed each
			// value on every request.
			logger.LogAttrs(c.Request().Context(), slog.LevelInfo, "request",
				slog.String("id", c.Response().Header().Get(echo.HeaderXRequestID)), slog.String("method", c.Request().Method),
				slog.String("path", c.Request().URL.Path), slog.Int("status", code), slog.Duration("took", took), slog.String("remote", c.RealIP()))
			return err
		}
	}
}
