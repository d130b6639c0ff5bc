package worker

import (
	"fmt"
	"sort"
	"strings"
)

// ClassWorkspaceTrust is cursor-agent refusing an untrusted workspace.
const ClassWorkspaceTrust = "workspace_trust"

const (
	cursorAuthHint  = "Cursor is not logged in: set CURSOR_API_KEY"
	cursorTrustHint = "cursor-agent refused to run: Workspace Trust Required (it must be started with --trust)"
)

var (
	// "Error: Authentication required. Please run 'agent login' first, or set
	// CURSOR_API_KEY environment variable." (docs/agent-clis.md §2.1) and kin.
	cursorAuthPatterns = []string{"authentication required", "not authenticated", "invalid api key", "agent login"}
	// The wording of a missing --resume chat in print mode is not established;
	// these cover "chat/session not found" with or without the id.
	chatMissingPatterns = []string{"chat not found", "session not found", "conversation not found"}
	notFoundPatterns    = []string{"not found", "could not find", "does not exist", "no such"}
)

// classifyCursorExit explains a non-zero exit without a result line: cursor-agent
// reports its pre-flight failures as plain text on stderr (§2.3).
func classifyCursorExit(exit processExit, resumed string) Classification {
	lower := strings.ToLower(exit.StderrTail)
	switch {
	case containsAny(lower, cursorAuthPatterns):
		return Classification{ClassAuth, cursorAuthHint}
	case strings.Contains(lower, "workspace trust required"):
		return Classification{ClassWorkspaceTrust, cursorTrustHint}
	case resumed != "" && (containsAny(lower, chatMissingPatterns) ||
		strings.Contains(lower, strings.ToLower(resumed)) && containsAny(lower, notFoundPatterns)):
		return Classification{ClassSessionNotFound, "the chat to resume was not found"}
	}
	var msg string
	if exit.Code < 0 {
		msg = "cursor-agent was killed by a signal"
	} else {
		msg = fmt.Sprintf("cursor-agent exited with status %d", exit.Code)
	}
	if tail := strings.TrimSpace(exit.StderrTail); tail != "" {
		msg += ": " + tail
	} else {
		msg += " without output on stderr"
	}
	return Classification{ClassCrashed, msg}
}

// classifyCursorError explains a result line with is_error:true. None is known
// from shipped builds, but one must still count as a failure (§2.3).
func classifyCursorError(text string) Classification {
	if containsAny(strings.ToLower(text), cursorAuthPatterns) {
		return Classification{ClassAuth, cursorAuthHint}
	}
	if msg := oneLine(text, 1000); msg != "" {
		return Classification{ClassAgentError, msg}
	}
	return Classification{ClassAgentError, "cursor-agent reported an error"}
}

// cursorToolKind finds the tool in a tool_call object: the key of a flattened
// protobuf oneof (readToolCall, shellToolCall, …) or "function".
func cursorToolKind(tc map[string]any) (string, map[string]any) {
	keys := make([]string, 0, len(tc))
	for k := range tc {
		if k == "function" || (strings.HasSuffix(k, "ToolCall") && len(k) > len("ToolCall")) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys) // only one is expected; pick deterministically anyway
	for _, k := range keys {
		if call, ok := tc[k].(map[string]any); ok {
			return k, call
		}
	}
	return "", nil
}

// cursorToolSummary names a tool call and gives the one line a person sees,
// worded like the claude provider's.
func cursorToolSummary(kind string, call map[string]any, workspace string) (name, summary string) {
	args := obj(call, "args")
	arg := func(keys ...string) string {
		for _, k := range keys {
			if v := oneLine(str(args, k), 200); v != "" {
				return v
			}
		}
		return ""
	}
	withPath := func(verb string) string {
		p := str(args, "path")
		if p == "" {
			p = str(args, "filePath")
		}
		if p = oneLine(relPath(p, workspace), 200); p != "" {
			return verb + " " + p
		}
		return verb
	}
	name, summary = kind, kind
	switch kind {
	case "function":
		if name = oneLine(str(call, "name"), 100); name == "" {
			name = "function"
		}
		summary = name
	case "readToolCall":
		summary = withPath("Read")
	case "writeToolCall":
		summary = withPath("Write")
	case "editToolCall":
		summary = withPath("Edit")
	case "deleteToolCall":
		summary = withPath("Delete")
	case "lsToolCall":
		summary = withPath("List")
	case "shellToolCall":
		summary = "Shell"
		if cmd := firstLine(str(args, "command"), 120); cmd != "" {
			summary = "Run: " + cmd
		}
	case "grepToolCall":
		summary = "Search"
		if v := arg("pattern"); v != "" {
			summary = `Search "` + v + `"`
		}
	case "globToolCall":
		summary = "Find"
		if v := arg("globPattern", "pattern"); v != "" {
			summary = "Find " + v
		}
	case "mcpToolCall":
		server, tool := arg("providerIdentifier", "serverName", "server"), arg("toolName", "name", "tool")
		switch {
		case server != "" && tool != "":
			summary = server + ": " + tool
		case tool != "":
			summary = "MCP: " + tool
		default:
			summary = "MCP tool"
		}
	case "taskToolCall":
		summary = "Subagent"
		if v := arg("description"); v != "" {
			summary = "Subagent: " + v
		}
	default:
		if strings.Contains(strings.ToLower(kind), "todo") {
			summary = "Update todo list"
		}
	}
	return oneLine(name, 100), oneLine(summary, 300)
}
