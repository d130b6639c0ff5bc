package fakeagent

import (
	"bufio"
	"encoding/json"
	"os"
)

// fake:fix-write=<path>=<content> plays an agent that gets something wrong
// first and fixes it when told about it: a new session ignores the directive,
// and a resumed session (claude --resume, cursor-agent --resume) writes the
// file like fake:write. The directive may sit in the current prompt or in any
// earlier prompt of the conversation, so a task description can script the
// fix that the runner's later "verify failed" prompt asks for.

// recall applies the fix writes of the conversation's earlier prompts and of
// the current one. A default write (no fake:write in the prompt) gives way to
// them, so a fix round changes only what the fix names.
func (d *directives) recall(history []string) {
	fixes := append([]fileWrite(nil), d.fixWrites...)
	for _, p := range history {
		if old, err := parseDirectives(p); err == nil {
			fixes = append(fixes, old.fixWrites...)
		}
	}
	if len(fixes) == 0 {
		return
	}
	if d.defaultWrite {
		d.writes, d.defaultWrite = nil, false
	}
	d.writes = append(d.writes, fixes...)
}

// transcriptPrompts returns the text prompts of a claude transcript, oldest
// first. An unreadable transcript has none.
func transcriptPrompts(path string) []string {
	var out []string
	eachLine(path, func(b []byte) {
		var e struct {
			Type    string `json:"type"`
			Message struct {
				Content json.RawMessage `json:"content"`
			} `json:"message"`
		}
		var text string
		if json.Unmarshal(b, &e) == nil && e.Type == "user" && json.Unmarshal(e.Message.Content, &text) == nil {
			out = append(out, text)
		}
	})
	return out
}

// chatPrompts returns the prompts of a cursor-agent chat, oldest first.
func chatPrompts(path string) []string {
	var out []string
	eachLine(path, func(b []byte) {
		var e struct{ Role, Text string }
		if json.Unmarshal(b, &e) == nil && e.Role == "user" && e.Text != "" {
			out = append(out, e.Text)
		}
	})
	return out
}

func eachLine(path string, fn func([]byte)) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		fn(sc.Bytes())
	}
}
