package fakeagent

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Scenario names accepted by `fake:scenario=`.
var scenarios = map[string]bool{
	"edit": true, "noop": true, "fail": true, "chatty": true, "slow": true, "hang": true,
	"usage-limit": true, "usage-limit-legacy": true, "credit": true, "max-turns": true,
	"auth": true, "crash": true, "truncated": true, "unknown-events": true,
	"hostile": true, "netprobe": true,
	"leak-text": true, "leak-files": true, "leak-result": true,
}

// fileWrite is one `fake:write=<relpath>=<content>`.
type fileWrite struct {
	Path, Content string
}

// directives are the `fake:` lines of a prompt, one per line:
//
//	fake:scenario=<name>        the script to play (default edit)
//	fake:write=<path>=<content> a file to write, relative to cwd; \n in content is a newline
//	fake:count=<n>              messages for chatty
//	fake:delay=<duration>       pause after every output line (slow defaults to 300ms)
//	fake:ignore-sigterm         keep running on SIGTERM (hang waits for SIGKILL)
//	fake:env-file=<abs path>    dump the environment there, one KEY=VALUE a line
//	fake:resume-error=result    report a missing --resume session as an error result
//	fake:churn-session-id       on resume, report a fresh id in system/init (CLI 2.1.139)
//	fake:fix-write=<path>=<c>   like write, but only when the session is resumed (fixwrite.go)
//	fake:attack=<name> [k=v…]   a probe of the hostile scenario (see hostile.go)
//	fake:probe=<kind>:<target>  a network probe of the netprobe scenario (see netprobe.go)
type directives struct {
	scenario            string
	writes              []fileWrite
	count               int
	delay               time.Duration
	ignoreSigterm       bool
	envFile             string
	resumeErrorAsResult bool
	churnSessionID      bool
	fixWrites           []fileWrite // fake:fix-write, applied by recall on resume
	defaultWrite        bool        // writes holds only the default TRAKKAR_FAKE.md
	attacks             []attack
	probes              []string // netprobe: kind:target
	firstLine           string   // first line of the prompt that is not a directive
}

func parseDirectives(prompt string) (directives, error) {
	d := directives{scenario: "edit", count: 50, delay: -1}
	for _, raw := range strings.Split(prompt, "\n") {
		line := strings.TrimSpace(raw)
		rest, ok := strings.CutPrefix(line, "fake:")
		if !ok {
			if d.firstLine == "" && line != "" {
				d.firstLine = line
			}
			continue
		}
		key, val, _ := strings.Cut(rest, "=")
		switch key {
		case "scenario":
			if !scenarios[val] {
				return d, fmt.Errorf("unknown scenario %q", val)
			}
			d.scenario = val
		case "write":
			p, content, ok := strings.Cut(val, "=")
			if !ok || p == "" {
				return d, fmt.Errorf("fake:write needs <path>=<content>, got %q", val)
			}
			if !filepath.IsLocal(p) {
				return d, fmt.Errorf("fake:write path %q must stay inside the working directory", p)
			}
			d.writes = append(d.writes, fileWrite{Path: filepath.Clean(p), Content: strings.ReplaceAll(content, `\n`, "\n")})
		case "count":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				return d, fmt.Errorf("fake:count needs a number, got %q", val)
			}
			d.count = n
		case "delay":
			dur, err := time.ParseDuration(val)
			if err != nil || dur < 0 {
				return d, fmt.Errorf("fake:delay needs a duration, got %q", val)
			}
			d.delay = dur
		case "ignore-sigterm":
			d.ignoreSigterm = true
		case "env-file":
			d.envFile = val
		case "resume-error":
			if val != "result" {
				return d, fmt.Errorf("fake:resume-error only takes result, got %q", val)
			}
			d.resumeErrorAsResult = true
		case "churn-session-id":
			d.churnSessionID = true
		case "fix-write":
			p, content, ok := strings.Cut(val, "=")
			if !ok || p == "" || !filepath.IsLocal(p) {
				return d, fmt.Errorf("fake:fix-write needs <path>=<content> inside the working directory, got %q", val)
			}
			d.fixWrites = append(d.fixWrites, fileWrite{Path: filepath.Clean(p), Content: strings.ReplaceAll(content, `\n`, "\n")})
		case "probe":
			d.probes = append(d.probes, val)
		case "attack":
			a, err := parseAttack(val)
			if err != nil {
				return d, err
			}
			d.attacks = append(d.attacks, a)
		default:
			return d, fmt.Errorf("unknown directive %q", line)
		}
	}
	if d.delay < 0 {
		d.delay = 0
		if d.scenario == "slow" {
			d.delay = 300 * time.Millisecond
		}
	}
	if len(d.writes) == 0 && (d.scenario == "edit" || d.scenario == "slow" || d.scenario == "truncated" || d.scenario == "unknown-events") {
		d.writes = []fileWrite{{Path: "TRAKKAR_FAKE.md", Content: d.firstLine + "\n"}}
		d.defaultWrite = true
	}
	return d, nil
}

// promptFromStreamJSON joins the text of the user messages of a stream-json input.
func promptFromStreamJSON(in string) (string, error) {
	var parts []string
	for _, line := range strings.Split(in, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var m struct {
			Type    string `json:"type"`
			Message struct {
				Content json.RawMessage `json:"content"`
			} `json:"message"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			return "", fmt.Errorf("Error parsing streaming input line: %s: SyntaxError: %v", line, err)
		}
		if m.Type != "user" {
			continue
		}
		var s string
		if json.Unmarshal(m.Message.Content, &s) == nil {
			parts = append(parts, s)
			continue
		}
		var blocks []struct{ Type, Text string }
		if err := json.Unmarshal(m.Message.Content, &blocks); err != nil {
			return "", errors.New("Error parsing streaming input line: message.content must be a string or an array of blocks")
		}
		for _, b := range blocks {
			if b.Type == "text" {
				parts = append(parts, b.Text)
			}
		}
	}
	return strings.Join(parts, "\n"), nil
}
