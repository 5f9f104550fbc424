// Command benchrun runs one load generator and records what it measured
// together with what it cost the server, for bench/run.sh; it also turns
// the records into Markdown tables.
//
//	benchrun run -results FILE -group G -label L -rep N [-pids P,Q] [-raw FILE] [-timeout D] -- CMD ARGS...
//
// runs CMD (killed after -timeout), saves its output to -raw, and appends
// one JSON record to -results: the requests/s, latency and throughput that
// CMD reported (spdymux bench -json, wrk --latency or h2load output are
// recognised), the CPU time the -pids processes (the server) used during
// the run, per request too, the load generator's own CPU time, and the
// CPU time every other process on the machine used ("foreign", in cores),
// which tells a quiet run from a noisy one.
//
//	benchrun table -results FILE [-ratio G:A/B ...]
//
// prints one Markdown table per group, each label's median over its
// repetitions and the spread (min-max), and each ratio A/B of a group
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

	WallS          float64 `json:"wall_s"`
	ServerCPUS     float64 `json:"server_cpu_s"`
	ServerCPUUsReq float64 `json:"server_cpu_us_per_req"`
	LoadgenCPUS    float64 `json:"loadgen_cpu_s"`
	ForeignCores   float64 `json:"foreign_cores"`
	Loadavg1       float64 `json:"loadavg1"`
	ExitError      string  `json:"exit_error,omitempty"`
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
	busy0, serv0 := machineBusy(), pidsCPU(serverPids)
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	busy1, serv1 := machineBusy(), pidsCPU(serverPids)

	r := record{Group: *group, Label: *label, Rep: *rep, Command: cmdArgs, WallS: wall.Seconds()}
	if err != nil {
		r.ExitError = err.Error()
	}
	if ps := cmd.ProcessState; ps != nil {
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			r.LoadgenCPUS = tv(ru.Utime) + tv(ru.Stime)
		}
	}
	r.ServerCPUS = float64(serv1-serv0) / clockTicks
	r.ForeignCores = math.Max(0, (float64(busy1-busy0)/clockTicks-r.ServerCPUS-r.LoadgenCPUS)/wall.Seconds())
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		r.Loadavg1, _ = strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	}
	parse(&r, stdout.Bytes())
	if r.Requests > 0 {
		r.ServerCPUUsReq = r.ServerCPUS * 1e6 / r.Requests
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
	fmt.Printf("  %-8s %-34s rep %d: %10.0f req/s  %8.1f MB/s  p50 %7.3f ms  server %6.1f us/req  foreign %.2f cores%s\n",
		r.Group, r.Label, r.Rep, r.ReqPerS, r.BodyBytesPS/1e6, r.LatencyP50ms, r.ServerCPUUsReq, r.ForeignCores, errNote(r))
}

func errNote(r record) string {
	s := ""
	if r.Failed > 0 {
		s += fmt.Sprintf("  FAILED %.0f", r.Failed)
	}
	if r.ExitError != "" {
		s += "  (" + r.ExitError + ")"
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

// pidsCPU returns the user+system ticks of the processes, their threads
// included.
func pidsCPU(pids []int) uint64 {
	var t uint64
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 on
		u, _ := strconv.ParseUint(f[11], 10, 64)                 // field 14 utime
		k, _ := strconv.ParseUint(f[12], 10, 64)                 // field 15 stime
		t += u + k
	}
	return t
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
			Latency     struct {
				Mean, P50, P99 float64
			} `json:"latency_ms"`
		}
		if err := json.Unmarshal(out[i:], &j); err == nil {
			r.ReqPerS, r.Requests, r.Failed, r.BodyBytesPS = j.ReqPerS, j.Requests, j.Failed, j.BodyBytesPS
			r.LatencyP50ms, r.LatencyP99ms, r.LatencyAvgms = j.Latency.P50, j.Latency.P99, j.Latency.Mean
			return
		}
	}
	s := string(out)
	if m := wrkReqs.FindStringSubmatch(s); m != nil {
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
	for _, r := range recs {
		k := [2]string{r.Group, r.Label}
		if !slices.Contains(groups, r.Group) {
			groups = append(groups, r.Group)
		}
		if !slices.Contains(labels[r.Group], r.Label) {
			labels[r.Group] = append(labels[r.Group], r.Label)
		}
		by[k] = append(by[k], r)
	}
	for _, g := range groups {
		fmt.Printf("\n### %s\n\n", g)
		fmt.Println("| run | n | req/s median | req/s min–max | MB/s (body) | p50 ms | p99 ms | mean ms | server CPU µs/req | load gen CPU s | foreign cores | failed |")
		fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|")
		for _, l := range labels[g] {
			rs := by[[2]string{g, l}]
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
			fmt.Printf("| %s%s | %d | %.0f | %.0f–%.0f | %s | %s | %s | %s | %.1f | %.2f | %.2f | %.0f |\n",
				l, mark, len(rs), median(rps), slices.Min(rps), slices.Max(rps),
				opt(median(get(func(r record) float64 { return r.BodyBytesPS / 1e6 })), "%.1f"),
				opt(median(get(func(r record) float64 { return r.LatencyP50ms })), "%.3f"),
				opt(median(get(func(r record) float64 { return r.LatencyP99ms })), "%.3f"),
				opt(median(get(func(r record) float64 { return r.LatencyAvgms })), "%.3f"),
				median(get(func(r record) float64 { return r.ServerCPUUsReq })),
				median(get(func(r record) float64 { return r.LoadgenCPUS })),
				foreign, failed)
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
