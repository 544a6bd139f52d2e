package graph

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts Graph requests (one per HTTP attempt, retries included) by
// operation and status, and times them.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics creates the collectors contactsdav_graph_requests_total{operation,status}
// and contactsdav_graph_request_duration_seconds{operation} and registers them with reg
// (nil: not registered). When reg already holds them, as after a second
// call, the registered ones are shared.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "contactsdav_graph_requests_total",
			Help: "Microsoft Graph HTTP requests by operation and status (\"error\" when no answer came).",
		}, []string{"operation", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "contactsdav_graph_request_duration_seconds",
			Help:    "Duration of Microsoft Graph HTTP requests.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}, []string{"operation"}),
	}
	if reg != nil {
		m.requests = register(reg, m.requests)
		m.duration = register(reg, m.duration)
	}
	return m
}

// register registers c, or returns the collector already registered in its
// place.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

func (m *Metrics) observe(op, status string, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(op, status).Inc()
	m.duration.WithLabelValues(op).Observe(d.Seconds())
}
