// Command benchrun runs one load generator and records what it measured
// together with what it cost the server, for bench/run.sh; it also turns
// the records into Markdown tables.
//
//	benchrun run -results FILE -group G -label L -rep N [-pids P,Q] [-want-proto A,B]
//	             [-raw FILE] [-timeout D] -- CMD ARGS...
//
// runs CMD (killed after -timeout), saves its output to -raw, and appends
// one JSON record to -results: the requests/s, latency and throughput that
// CMD reported (spdymux bench -json, wrk --latency or h2load output are
// recognised), the protocol it spoke (h2load's "Application protocol:",
// spdymux bench's "proto", http/1.1 for wrk), the CPU time the -pids
// processes and all their descendants (the server: nghttpx and Apache
// httpd work in child processes) used during the run, per request too,
// the load generator's own CPU time, and the CPU time every other process
// on the machine used ("foreign", in cores), which tells a quiet run from
// a noisy one. With -want-proto, a run that spoke any other protocol (h2load
// falls back to http/1.1 silently when ALPN or the h2c preface fails) is
// recorded as failed and left out of the tables' figures.
//
//	benchrun table -results FILE [-ratio G:A/B ...]
//
// prints one Markdown table per group, each label's median over its
// repetitions and the spread (min-max) -- "server cores" is the server's
// CPU time over the run's wall time, below 1 when the server was not
// CPU-bound or did not get its core -- and each ratio A/B of a group
// computed per repetition, so over runs measured side by side, with its
// median and spread.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"

	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// record is one run.
type record struct {
	Group   string   `json:"group"`
	Label   string   `json:"label"`
	Rep     int      `json:"rep"`
	Command []string `json:"command"`

	ReqPerS      float64 `json:"req_per_s"`
	Requests     float64 `json:"requests"`
	Failed       float64 `json:"failed"`
	BodyBytesPS  float64 `json:"body_bytes_per_s"`
	LatencyP50ms float64 `json:"latency_p50_ms"`
	LatencyP99ms float64 `json:"latency_p99_ms"` // 0 when the tool gives none (h2load)
	LatencyAvgms float64 `json:"latency_mean_ms"`
	Proto        string  `json:"proto,omitempty"`       // the protocol the load generator spoke
	TLS          string  `json:"tls,omitempty"`         // h2load's TLS protocol and cipher
	ProtoError   string  `json:"proto_error,omitempty"` // set when Proto is not one of -want-proto

	WallS          float64 `json:"wall_s"`
	ServerCPUS     float64 `json:"server_cpu_s"`
	ServerCPUUsReq float64 `json:"server_cpu_us_per_req"`
	// ServerCPUEach splits ServerCPUUsReq by -pids, in their order (a
	// gateway and its backend), when there is more than one.
	ServerCPUEach []float64 `json:"server_cpu_us_per_req_each,omitempty"`
	LoadgenCPUS   float64   `json:"loadgen_cpu_s"`
	ForeignCores  float64   `json:"foreign_cores"`
	Loadavg1      float64   `json:"loadavg1"`
	ExitError     string    `json:"exit_error,omitempty"`
}

func main() {
	log.SetPrefix("benchrun: ")
	log.SetFlags(0)
	if len(os.Args) < 2 {
		log.Fatal("usage: benchrun run|table [flags]")
	}
	switch os.Args[1] {
	case "run":
		run(os.Args[2:])
	case "table":
		table(os.Args[2:])
	default:
		log.Fatalf("unknown subcommand %q", os.Args[1])
	}
}

const clockTicks = 100 // USER_HZ on Linux

func run(args []string) {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	results := fs.String("results", "", "append the record to this JSON-lines `file`")
	group := fs.String("group", "", "group of the run")
	label := fs.String("label", "", "label of the run")
	rep := fs.Int("rep", 0, "repetition number")
	pids := fs.String("pids", "", "comma-separated server `pids`")
	raw := fs.String("raw", "", "save the command's output to this `file`")
	timeout := fs.Duration("timeout", 120*time.Second, "kill the command after this long")
	wantProto := fs.String("want-proto", "", "comma-separated `protocols` the run must speak (h2, h2c, spdy/3.1, http/1.1); any other fails the run")
	fs.Parse(args)
	cmdArgs := fs.Args()
	if len(cmdArgs) == 0 || *results == "" {
		log.Fatal("run: need -results and a command")
	}
	var serverPids []int
	for p := range strings.SplitSeq(*pids, ",") {
		if p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			log.Fatalf("bad pid %q", p)
		}
		serverPids = append(serverPids, n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, cmdArgs[0], cmdArgs[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	each := func() []map[int]uint64 {
		var m []map[int]uint64
		if len(serverPids) > 1 {
			for _, p := range serverPids {
				m = append(m, treeCPU([]int{p}))
			}
		}
		return m
	}
	busy0, serv0, each0 := machineBusy(), treeCPU(serverPids), each()
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	busy1, serv1, each1 := machineBusy(), treeCPU(serverPids), each()

	r := record{Group: *group, Label: *label, Rep: *rep, Command: cmdArgs, WallS: wall.Seconds()}
	if err != nil {
		r.ExitError = err.Error()
	}
	if ps := cmd.ProcessState; ps != nil {
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			r.LoadgenCPUS = tv(ru.Utime) + tv(ru.Stime)
		}
	}
	r.ServerCPUS = float64(cpuDelta(serv0, serv1)) / clockTicks
	r.ForeignCores = math.Max(0, (float64(busy1-busy0)/clockTicks-r.ServerCPUS-r.LoadgenCPUS)/wall.Seconds())
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		r.Loadavg1, _ = strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	}
	parse(&r, stdout.Bytes())
	if *wantProto != "" && !slices.Contains(strings.Split(*wantProto, ","), r.Proto) {
		got := r.Proto
		if got == "" {
			got = "none reported"
		}
		r.ProtoError = fmt.Sprintf("spoke %s, want %s", got, *wantProto)
	}
	if r.Requests > 0 {
		r.ServerCPUUsReq = r.ServerCPUS * 1e6 / r.Requests
		for i := range each1 {
			r.ServerCPUEach = append(r.ServerCPUEach, float64(cpuDelta(each0[i], each1[i]))/clockTicks*1e6/r.Requests)
		}
	}

	if *raw != "" {
		var b bytes.Buffer
		fmt.Fprintf(&b, "$ %s\n", strings.Join(cmdArgs, " "))
		b.Write(stdout.Bytes())
		if stderr.Len() > 0 {
			b.WriteString("--- stderr (last 2 KiB) ---\n")
			e := stderr.Bytes()
			b.Write(e[max(0, len(e)-2048):])
		}
		if err := os.WriteFile(*raw, b.Bytes(), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	line, _ := json.Marshal(r)
	f, err := os.OpenFile(*results, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		log.Fatal(err)
	}
	f.Write(append(line, '\n'))
	f.Close()
	fmt.Printf("  %-8s %-34s rep %d: %-8s %10.0f req/s  %8.1f MB/s  p50 %7.3f ms  server %6.1f us/req  foreign %.2f cores%s\n",
		r.Group, r.Label, r.Rep, r.Proto, r.ReqPerS, r.BodyBytesPS/1e6, r.LatencyP50ms, r.ServerCPUUsReq, r.ForeignCores, errNote(r))
}

func errNote(r record) string {
	s := ""
	if r.Failed > 0 {
		s += fmt.Sprintf("  FAILED %.0f", r.Failed)
	}
	if r.ExitError != "" {
		s += "  (" + r.ExitError + ")"
	}
	if r.ProtoError != "" {
		s += "  WRONG PROTOCOL: " + r.ProtoError
	}
	return s
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// machineBusy returns the non-idle CPU ticks of the whole machine.
func machineBusy() uint64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var busy uint64
	for i, s := range f[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait, guest
			continue
		}
		n, _ := strconv.ParseUint(s, 10, 64)
		busy += n
	}
	return busy
}

// treeCPU returns the user+system ticks of each of the processes and of
// all their descendants, threads included, by pid.
func treeCPU(roots []int) map[int]uint64 {
	cpu := map[int]uint64{}
	if len(roots) == 0 {
		return cpu
	}
	parent := map[int]int{}
	ticks := map[int]uint64{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, t, ok := procStat(pid); ok {
			parent[pid], ticks[pid] = ppid, t
		}
	}
	in := func(pid int) bool {
		for range 64 { // bounded walk up the tree
			if slices.Contains(roots, pid) {
				return true
			}
			p, ok := parent[pid]
			if !ok || p <= 1 {
				return false
			}
			pid = p
		}
		return false
	}
	for pid, t := range ticks {
		if in(pid) {
			cpu[pid] = t
		}
	}
	return cpu
}

// cpuDelta is the CPU the processes of after used since before: a
// process that started in between counts whole. (One that ended in
// between is lost, unless its parent reaped it; the servers measured keep
// their processes for their lifetime.)
func cpuDelta(before, after map[int]uint64) uint64 {
	var d uint64
	for pid, t := range after {
		if t0, ok := before[pid]; ok && t0 <= t {
			d += t - t0
		} else if !ok {
			d += t
		}
	}
	return d
}

// procStat returns a process's parent and its user+system ticks.
func procStat(pid int) (ppid int, ticks uint64, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return 0, 0, false
	}
	f := strings.Fields(s[i+2:]) // fields from 3 on
	if len(f) < 13 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])             // field 4 ppid
	u, _ := strconv.ParseUint(f[11], 10, 64) // field 14 utime
	k, _ := strconv.ParseUint(f[12], 10, 64) // field 15 stime
	return ppid, u + k, true
}

var (
	wrkReqs    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkTotal   = regexp.MustCompile(`(\d+) requests in`)
	wrkPct     = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkAvg     = regexp.MustCompile(`(?m)^\s+Latency\s+([0-9.]+)(us|ms|s)`)
	wrkErr     = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSockErr = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	h2Fin      = regexp.MustCompile(`finished in ([0-9.]+)(us|ms|s), ([0-9.]+) req/s`)
	h2Reqs     = regexp.MustCompile(`requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed`)
	h2Time     = regexp.MustCompile(`time for request:\s+([0-9.]+)(us|ms|s)\s+([0-9.]+)(us|ms|s)\s+([0-9.]+)(us|ms|s)`)
	h2Body     = regexp.MustCompile(`traffic: .*?\((\d+)\) total, .*?\((\d+)\) headers .*?, .*?\((\d+)\) data`)
	h2Proto    = regexp.MustCompile(`(?m)^Application protocol: (\S+)`)
	h2TLS      = regexp.MustCompile(`(?m)^TLS Protocol: (\S+)\s*\nCipher: (\S+)`)
)

func ms(v, unit string) float64 {
	f, _ := strconv.ParseFloat(v, 64)
	switch unit {
	case "us":
		return f / 1000
	case "s":
		return f * 1000
	}
	return f
}

func num(s string) float64 { f, _ := strconv.ParseFloat(s, 64); return f }

// parse fills in what the load generator reported.
func parse(r *record, out []byte) {
	if i := bytes.IndexByte(out, '{'); i >= 0 && bytes.Contains(out, []byte(`"req_per_s"`)) {
		var j struct {
			ReqPerS     float64 `json:"req_per_s"`
			Requests    float64 `json:"requests"`
			Failed      float64 `json:"failed"`
			BodyBytesPS float64 `json:"body_bytes_per_s"`
			Proto       string  `json:"proto"`
			Latency     struct {
				Mean, P50, P99 float64
			} `json:"latency_ms"`
		}
		if err := json.Unmarshal(out[i:], &j); err == nil {
			r.ReqPerS, r.Requests, r.Failed, r.BodyBytesPS = j.ReqPerS, j.Requests, j.Failed, j.BodyBytesPS
			r.Proto = j.Proto
			r.LatencyP50ms, r.LatencyP99ms, r.LatencyAvgms = j.Latency.P50, j.Latency.P99, j.Latency.Mean
			return
		}
	}
	s := string(out)
	if m := wrkReqs.FindStringSubmatch(s); m != nil {
		r.Proto = "http/1.1"
		r.ReqPerS = num(m[1])
		if m := wrkTotal.FindStringSubmatch(s); m != nil {
			r.Requests = num(m[1])
		}
		for _, m := range wrkPct.FindAllStringSubmatch(s, -1) {
			if m[1] == "50" {
				r.LatencyP50ms = ms(m[2], m[3])
			} else {
				r.LatencyP99ms = ms(m[2], m[3])
			}
		}
		if m := wrkAvg.FindStringSubmatch(s); m != nil {
			r.LatencyAvgms = ms(m[1], m[2])
		}
		if m := wrkErr.FindStringSubmatch(s); m != nil {
			r.Failed += num(m[1])
		}
		if m := wrkSockErr.FindStringSubmatch(s); m != nil {
			r.Failed += num(m[1]) + num(m[2]) + num(m[3]) + num(m[4])
		}
		return
	}
	if m := h2Proto.FindStringSubmatch(s); m != nil {
		r.Proto = m[1]
	}
	if m := h2TLS.FindStringSubmatch(s); m != nil {
		r.TLS = m[1] + " " + m[2]
	}
	if m := h2Fin.FindStringSubmatch(s); m != nil {
		secs := ms(m[1], m[2]) / 1000
		r.ReqPerS = num(m[3])
		if m := h2Reqs.FindStringSubmatch(s); m != nil {
			r.Requests, r.Failed = num(m[2]), num(m[3])
		}
		if m := h2Time.FindStringSubmatch(s); m != nil {
			r.LatencyAvgms = ms(m[5], m[6])
		}
		if m := h2Body.FindStringSubmatch(s); m != nil && secs > 0 {
			r.BodyBytesPS = num(m[3]) / secs
		}
	}
}

func table(args []string) {
	fs := flag.NewFlagSet("table", flag.ExitOnError)
	results := fs.String("results", "", "JSON-lines `file` written by run")
	var ratios []string
	fs.Func("ratio", "`G:A/B`: the ratio of label A's to label B's requests/s (or bytes/s) in group G, per repetition", func(s string) error {
		ratios = append(ratios, s)
		return nil
	})
	noisy := fs.Float64("noisy", 0.3, "mark a label whose median foreign CPU exceeds this many `cores`")
	fs.Parse(args)
	f, err := os.Open(*results)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	var recs []record
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			log.Fatal(err)
		}
		recs = append(recs, r)
	}

	var groups []string
	labels := map[string][]string{}
	by := map[[2]string][]record{}
	wrong := map[[2]string][]record{} // runs that spoke the wrong protocol
	for _, r := range recs {
		k := [2]string{r.Group, r.Label}
		if !slices.Contains(groups, r.Group) {
			groups = append(groups, r.Group)
		}
		if !slices.Contains(labels[r.Group], r.Label) {
			labels[r.Group] = append(labels[r.Group], r.Label)
		}
		if r.ProtoError != "" {
			wrong[k] = append(wrong[k], r)
			continue
		}
		by[k] = append(by[k], r)
	}
	for _, g := range groups {
		fmt.Printf("\n### %s\n\n", g)
		fmt.Println("| run | proto | n | req/s median | req/s min–max | MB/s (body) | p50 ms | p99 ms | mean ms | server CPU µs/req (each, for a proxy and its backend) | server cores | load gen CPU s | foreign cores | load avg | failed |")
		fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
		for _, l := range labels[g] {
			k := [2]string{g, l}
			rs := by[k]
			if w := wrong[k]; len(w) > 0 {
				var why []string
				for _, r := range w {
					if !slices.Contains(why, r.ProtoError) {
						why = append(why, r.ProtoError)
					}
				}
				fmt.Printf("| %s (FAILED in %d of %d runs: %s) | – | %d | – | – | – | – | – | – | – | – | – | – | – | %d |\n",
					l, len(w), len(w)+len(rs), strings.Join(why, "; "), len(rs), len(w))
				if len(rs) == 0 {
					continue
				}
			}
			var protos []string
			for _, r := range rs {
				if r.Proto != "" && !slices.Contains(protos, r.Proto) {
					protos = append(protos, r.Proto)
				}
			}
			proto := strings.Join(protos, ", ")
			if proto == "" {
				proto = "–"
			}
			get := func(f func(record) float64) []float64 {
				var v []float64
				for _, r := range rs {
					v = append(v, f(r))
				}
				return v
			}
			rps := get(func(r record) float64 { return r.ReqPerS })
			foreign := median(get(func(r record) float64 { return r.ForeignCores }))
			mark := ""
			if foreign > *noisy {
				mark = " (noisy)"
			}
			var failed float64
			for _, r := range rs {
				failed += r.Failed
				if r.ExitError != "" {
					failed = math.Max(failed, 1)
				}
			}
			cpu := fmt.Sprintf("%.1f", median(get(func(r record) float64 { return r.ServerCPUUsReq })))
			if n := len(rs[0].ServerCPUEach); n > 1 {
				// Each server's share, in -pids order: a proxy, then its backend.
				var parts []string
				for i := range n {
					parts = append(parts, fmt.Sprintf("%.1f", median(get(func(r record) float64 {
						if i < len(r.ServerCPUEach) {
							return r.ServerCPUEach[i]
						}
						return math.NaN()
					}))))
				}
				cpu += " (" + strings.Join(parts, " + ") + ")"
			}
			fmt.Printf("| %s%s | %s | %d | %.0f | %.0f–%.0f | %s | %s | %s | %s | %s | %.2f | %.2f | %.2f | %.2f | %.0f |\n",
				l, mark, proto, len(rs), median(rps), slices.Min(rps), slices.Max(rps),
				opt(median(get(func(r record) float64 { return r.BodyBytesPS / 1e6 })), "%.1f"),
				opt(median(get(func(r record) float64 { return r.LatencyP50ms })), "%.3f"),
				opt(median(get(func(r record) float64 { return r.LatencyP99ms })), "%.3f"),
				opt(median(get(func(r record) float64 { return r.LatencyAvgms })), "%.3f"),
				cpu,
				median(get(func(r record) float64 { return r.ServerCPUS / r.WallS })),
				median(get(func(r record) float64 { return r.LoadgenCPUS })),
				foreign, median(get(func(r record) float64 { return r.Loadavg1 })), failed)
		}
	}
	if len(ratios) == 0 {
		return
	}
	fmt.Print("\n### Ratios (per repetition, side by side)\n\n")
	fmt.Println("| group | ratio | of req/s (MB/s for downloads): median | min–max | of server CPU µs/req: median |")
	fmt.Println("|---|---|---|---|---|")
	for _, s := range ratios {
		g, ab, ok := strings.Cut(s, ":")
		a, b, ok2 := strings.Cut(ab, "/")
		if !ok || !ok2 {
			log.Fatalf("bad -ratio %q", s)
		}
		ra, rb := by[[2]string{g, a}], by[[2]string{g, b}]
		if len(ra) == 0 && len(rb) == 0 && len(wrong[[2]string{g, a}]) == 0 && len(wrong[[2]string{g, b}]) == 0 {
			continue // neither was run (run.sh -only)
		}
		var thr, cpu []float64
		for _, x := range ra {
			for _, y := range rb {
				if x.Rep != y.Rep {
					continue
				}
				xv, yv := x.ReqPerS, y.ReqPerS
				if x.BodyBytesPS > 0 && y.BodyBytesPS > 0 && (x.Requests < 100 || y.Requests < 100) {
					xv, yv = x.BodyBytesPS, y.BodyBytesPS
				}
				if yv > 0 {
					thr = append(thr, xv/yv)
				}
				if y.ServerCPUUsReq > 0 {
					cpu = append(cpu, x.ServerCPUUsReq/y.ServerCPUUsReq)
				}
			}
		}
		if len(thr) == 0 {
			fmt.Printf("| %s | %s / %s | – | – | – |\n", g, a, b)
			continue
		}
		fmt.Printf("| %s | %s / %s | %.2f | %.2f–%.2f | %s |\n", g, a, b, median(thr), slices.Min(thr), slices.Max(thr), opt(median(cpu), "%.2f"))
	}
}

func opt(v float64, format string) string {
	if v == 0 || math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf(format, v)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
