package cli

import (
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/spdymux/spdymux"
	"github.com/spdymux/spdymux/internal/gateway"
)

// metrics is what `serve -metrics ADDR` exports: docs/metrics.md lists
// every name and label. Most figures are read only when Prometheus
// scrapes: the listeners' Stats, the pool's, the gateway's connections,
// and counters that Config.Trace and the wire-counting connections bump
// with one atomic add each. Per request, observe updates the stream
// metrics. Nothing here runs when -metrics is not given.
type metrics struct {
	reg *prometheus.Registry

	draining atomic.Bool // the server is shutting down: /healthz says so

	// Set before serving, read by Collect:
	listeners []metricsListener
	pool      *spdymux.Pool
	gateway   *gateway.Gateway

	// Bumped by trace, on the sessions' reader and writer goroutines.
	frames [len(traceProtos)][2][len(frameTypes)]atomic.Uint64 // protocol, direction, type
	codes  [len(traceProtos)][2][2][maxCode + 1]atomic.Uint64  // protocol, direction, RST_STREAM|GOAWAY, code

	byProto map[string]*protoMetrics // read-only once made

	backendLatency prometheus.Histogram
	backendErrors  *prometheus.CounterVec
	certReloads    *prometheus.CounterVec
	certExpiry     prometheus.Gauge
}

// metricsListener is one of serve's listeners, named as the listener
// label says: "tls" or "plain".
type metricsListener struct {
	name string
	ln   *spdymux.Listener
	wire *wireCounter
}

// protoMetrics are the stream metrics of one protocol, resolved once.
type protoMetrics struct {
	active   prometheus.Gauge
	duration prometheus.Observer
	total    [6]prometheus.Counter // by status class: 1xx to 5xx, index status/100
}

// traceProtos are the protocols whose frames are counted, as
// spdymux.Stats names them.
var traceProtos = [...]string{spdymux.ProtoH2, spdymux.ProtoH2C, spdymux.ProtoSPDY31, spdymux.ProtoSPDY3, spdymux.ProtoSPDY2}

// requestProtos are the protocols of the stream metrics: the multiplexed
// ones, and requests over HTTP/1.x (each counted as a stream).
var requestProtos = append(traceProtos[:], spdymux.ProtoHTTP11, "http/1.0")

// frameTypes are the frame types counted; the last is "other".
var frameTypes = [...]string{
	"DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING", "GOAWAY", "WINDOW_UPDATE",
	"CONTINUATION", "SYN_STREAM", "SYN_REPLY", "NOOP", "CREDENTIAL", "other",
}

// spdyFrameTypes and h2FrameTypes are the types exported for each family
// (zero or not), as indexes into frameTypes.
var (
	spdyFrameTypes = []int{0, 1, 3, 4, 6, 7, 8, 10, 11, 12, 13, 14}
	h2FrameTypes   = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14}
)

// maxCode is the largest error code counted by itself; larger ones are
// counted as maxCode ("other"). HTTP/2's go to 13, SPDY's to 11.
const maxCode = 15

func frameIndex(name string) int {
	switch name {
	case "DATA":
		return 0
	case "HEADERS":
		return 1
	case "PRIORITY":
		return 2
	case "RST_STREAM":
		return 3
	case "SETTINGS":
		return 4
	case "PUSH_PROMISE":
		return 5
	case "PING":
		return 6
	case "GOAWAY":
		return 7
	case "WINDOW_UPDATE":
		return 8
	case "CONTINUATION":
		return 9
	case "SYN_STREAM":
		return 10
	case "SYN_REPLY":
		return 11
	case "NOOP":
		return 12
	case "CREDENTIAL":
		return 13
	}
	return len(frameTypes) - 1
}

func traceProtoIndex(proto string) int {
	for i, p := range traceProtos {
		if p == proto {
			return i
		}
	}
	return 0
}

// Buckets of the duration histograms, in seconds: 1 ms to a minute.
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), byProto: map[string]*protoMetrics{}}
	active := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "spdymux_streams_active",
		Help: "Streams (and HTTP/1.x requests) being served now, by protocol.",
	}, []string{"protocol"})
	total := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "spdymux_streams_total",
		Help: "Streams (and HTTP/1.x requests) served, by protocol and response status class.",
	}, []string{"protocol", "status_class"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "spdymux_stream_duration_seconds",
		Help:    "Time from a stream's request to the end of its response, by protocol.",
		Buckets: durationBuckets,
	}, []string{"protocol"})
	for _, p := range requestProtos {
		pm := &protoMetrics{active: active.WithLabelValues(p), duration: duration.WithLabelValues(p)}
		for c := 1; c <= 5; c++ {
			pm.total[c] = total.WithLabelValues(p, strconv.Itoa(c)+"xx")
		}
		m.byProto[p] = pm
	}
	m.backendLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "spdymux_backend_response_header_seconds",
		Help:    "Gateway: time from taking a request to the backend's response header.",
		Buckets: durationBuckets,
	})
	m.backendErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "spdymux_backend_errors_total",
		Help: "Gateway: backend exchanges that failed before the response header, by kind: connect, timeout, broken, canceled.",
	}, []string{"kind"})
	for _, k := range []string{gateway.ErrConnect, gateway.ErrTimeout, gateway.ErrBroken, gateway.ErrCanceled} {
		m.backendErrors.WithLabelValues(k)
	}
	m.certReloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "spdymux_certificate_reloads_total",
		Help: "Certificate reloads on SIGHUP, by result: success or failure (the old certificate kept).",
	}, []string{"result"})
	m.certReloads.WithLabelValues("success")
	m.certReloads.WithLabelValues("failure")
	m.certExpiry = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "spdymux_certificate_expiry_timestamp_seconds",
		Help: "When the certificate in use expires, in seconds since the Unix epoch.",
	})
	v, _ := buildVersion()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "spdymux_build_info",
		Help:        "Always 1; the labels tell the version.",
		ConstLabels: prometheus.Labels{"version": v},
	})
	build.Set(1)
	m.reg.MustRegister(active, total, duration, m.backendLatency, m.backendErrors, m.certReloads, m.certExpiry, build,
		(*statsCollector)(m),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// trace is Config.Trace: it counts frames by protocol, direction and
// type, and the codes of RST_STREAM and GOAWAY.
func (m *metrics) trace(e spdymux.FrameEvent) {
	p, d := traceProtoIndex(e.Proto), 0
	if e.Out {
		d = 1
	}
	t := frameIndex(e.Name)
	m.frames[p][d][t].Add(1)
	var k int
	switch t {
	case 3: // RST_STREAM
	case 7: // GOAWAY
		k = 1
	default:
		return
	}
	m.codes[p][d][k][min(e.Code, maxCode)].Add(1)
}

// streamStarted counts a stream the handler began to serve, and returns
// the metrics of its protocol for streamEnded.
func (m *metrics) streamStarted(proto string) *protoMetrics {
	pm := m.byProto[proto]
	if pm == nil {
		pm = m.byProto[spdymux.ProtoHTTP11]
	}
	pm.active.Inc()
	return pm
}

// streamEnded counts the end of a stream streamStarted counted, after d,
// with the response status.
func streamEnded(pm *protoMetrics, d time.Duration, status int) {
	pm.active.Dec()
	pm.duration.Observe(d.Seconds())
	pm.total[min(max(status/100, 1), 5)].Inc()
}

// observeBackend is the gateway's Config.Observe: the backend latency
// histogram, the errors by kind, and the backend time of the access log.
func (m *metrics) observeBackend(r *http.Request, d time.Duration, err error) {
	if err != nil {
		m.backendErrors.WithLabelValues(gateway.ErrorKind(r, err)).Inc()
		return
	}
	m.backendLatency.Observe(d.Seconds())
}

// handler serves /metrics, /healthz and /debug/pprof/.
func (m *metrics) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if m.draining.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("draining\n"))
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<p>spdymux: <a href="/metrics">/metrics</a>, <a href="/healthz">/healthz</a>, <a href="/debug/pprof/">/debug/pprof/</a></p>` + "\n"))
	})
	return mux
}

// statsCollector exports the figures read at scrape time. It is an
// unchecked collector: its metrics are described by docs/metrics.md, not
// by Describe.
type statsCollector metrics

func (*statsCollector) Describe(chan<- *prometheus.Desc) {}

var (
	descSessionsOpen    = desc("spdymux_sessions_open", "HTTP/2 and SPDY sessions open now, by protocol.", "protocol")
	descSessions        = desc("spdymux_sessions_total", "HTTP/2 and SPDY sessions started, by protocol.", "protocol")
	descConns           = desc("spdymux_connections_total", "Client connections accepted, by listener (tls or plain).", "listener")
	descHandshakeErrors = desc("spdymux_handshake_errors_total", "Client connections closed before a protocol was told (TLS handshake failed, PROXY header missing, ...), by listener.", "listener")
	descReceived        = desc("spdymux_received_bytes_total", "Bytes read from client connections (TLS records included), by listener.", "listener")
	descSent            = desc("spdymux_sent_bytes_total", "Bytes written to client connections (TLS records included), by listener.", "listener")
	descFrames          = desc("spdymux_frames_total", "HTTP/2 and SPDY frames, by protocol, direction (received or sent) and type.", "protocol", "direction", "type")
	descRSTStreams      = desc("spdymux_rst_streams_total", "RST_STREAM frames, by protocol, direction (received or sent) and error code.", "protocol", "direction", "code")
	descGoAways         = desc("spdymux_goaways_total", "GOAWAY frames, by protocol, direction (received or sent) and error code.", "protocol", "direction", "code")
	descStreamErrors    = desc("spdymux_stream_errors_total", "Streams reset for a protocol error of the client's.")
	descSessionErrors   = desc("spdymux_session_errors_total", "Sessions ended for an error: GOAWAY with an error code, or a client that does not read.")
	descGlitches        = desc("spdymux_glitches_total", "Client frames that did nothing useful (counted against Config.GlitchBurst).")
	descLimitHits       = desc("spdymux_limit_hits_total", "Times clients ran into a limit, by limit (the Config field that sets it).", "limit")
	descWorkerSlots     = desc("spdymux_worker_slots", "Worker slots of the pool (-workers): streams served at once.")
	descWorkerSlotsBusy = desc("spdymux_worker_slots_busy", "Worker slots in use.")
	descWorkerQueue     = desc("spdymux_worker_queue_length", "Streams waiting for a worker slot.")
	descBackendConns    = desc("spdymux_backend_connections", "Gateway: connections open to the backend, by state: busy or idle.", "state")
	descBackendRetries  = desc("spdymux_backend_retries_total", "Gateway: requests sent again on a new connection after the one they went on failed before answering.")
	descBackendPiped    = desc("spdymux_backend_pipelined_total", "Gateway: requests queued on a backend connection behind another (-backend-pipeline).")
	descBackendJoined   = desc("spdymux_backend_pipeline_joined_total", "Gateway: of the requests pipelined, those that could have had a backend connection of their own (-backend-pipeline-wait).")
	descDraining        = desc("spdymux_draining", "1 while the server shuts down (GOAWAY sent, sessions draining), else 0.")
	directions          = [2]string{"received", "sent"}
	codeKinds           = [2]*prometheus.Desc{descRSTStreams, descGoAways}
	codeFrameNames      = [2]string{"RST_STREAM", "GOAWAY"}
	counter, gauge      = prometheus.CounterValue, prometheus.GaugeValue
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	m := (*metrics)(c)
	emit := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, t, v, labels...)
	}
	sessions := map[string]uint64{}
	open := map[string]int{}
	limits := map[string]uint64{}
	var streamErrs, sessionErrs, glitches uint64
	for _, l := range m.listeners {
		st := l.ln.Stats()
		for p, n := range st.SessionsByProto {
			sessions[p] += n
		}
		for p, n := range st.ActiveSessionsByProto {
			open[p] += n
		}
		for name, n := range st.LimitHits {
			limits[name] += n
		}
		streamErrs += st.StreamErrors
		sessionErrs += st.SessionErrors
		glitches += st.Glitches
		emit(descConns, counter, float64(st.Conns), l.name)
		emit(descHandshakeErrors, counter, float64(st.HandshakeErrors), l.name)
		if l.wire != nil {
			emit(descReceived, counter, float64(l.wire.in.Load()), l.name)
			emit(descSent, counter, float64(l.wire.out.Load()), l.name)
		}
	}
	for _, p := range traceProtos {
		emit(descSessions, counter, float64(sessions[p]), p)
		emit(descSessionsOpen, gauge, float64(open[p]), p)
	}
	for name, n := range limits {
		emit(descLimitHits, counter, float64(n), name)
	}
	emit(descStreamErrors, counter, float64(streamErrs))
	emit(descSessionErrors, counter, float64(sessionErrs))
	emit(descGlitches, counter, float64(glitches))

	for pi, p := range traceProtos {
		types := h2FrameTypes
		if p != spdymux.ProtoH2 && p != spdymux.ProtoH2C {
			types = spdyFrameTypes
		}
		for d, dir := range directions {
			for _, t := range types {
				emit(descFrames, counter, float64(m.frames[pi][d][t].Load()), p, dir, frameTypes[t])
			}
			for k, kd := range codeKinds {
				for code := range maxCode + 1 {
					n := m.codes[pi][d][k][code].Load()
					if n == 0 {
						continue
					}
					name := "other"
					if code < maxCode {
						name = spdymux.FrameEvent{Proto: p, Name: codeFrameNames[k], Code: uint32(code)}.CodeName()
					}
					emit(kd, counter, float64(n), p, dir, name)
				}
			}
		}
	}

	if m.pool != nil {
		busy, waiting := m.pool.Stats()
		emit(descWorkerSlots, gauge, float64(m.pool.Slots()))
		emit(descWorkerSlotsBusy, gauge, float64(busy))
		emit(descWorkerQueue, gauge, float64(waiting))
	}
	if m.gateway != nil {
		busy, idle := m.gateway.Conns()
		emit(descBackendConns, gauge, float64(busy), "busy")
		emit(descBackendConns, gauge, float64(idle), "idle")
		st := m.gateway.Stats()
		emit(descBackendRetries, counter, float64(st.Retries))
		emit(descBackendPiped, counter, float64(st.Pipelined))
		emit(descBackendJoined, counter, float64(st.Joined))
	}
	draining := 0.0
	if m.draining.Load() {
		draining = 1
	}
	emit(descDraining, gauge, draining)
}
