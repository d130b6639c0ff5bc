package standin

import "github.com/trakkar/trakkar-agent/internal/trakkar"

// Deep copies, so that snapshots handed to callers never share memory with the
// server's state.

func copyPtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func copyTask(t trakkar.Task) trakkar.Task {
	t.Labels = append([]string{}, t.Labels...)
	t.Messages = append([]trakkar.Message{}, t.Messages...)
	t.BaseBranch = copyPtr(t.BaseBranch)
	t.PullRequest = copyPtr(t.PullRequest)
	return t
}

func copyRun(r trakkar.Run) trakkar.Run {
	r.MessageID = copyPtr(r.MessageID)
	return r
}

func copyEvent(e trakkar.Event) trakkar.Event {
	if e.Data != nil {
		e.Data = copyValue(e.Data).(map[string]any)
	}
	return e
}

func copyCompletion(c *trakkar.Completion) *trakkar.Completion {
	if c == nil {
		return nil
	}
	v := *c
	v.Error = copyPtr(c.Error)
	v.PullRequest = copyPtr(c.PullRequest)
	v.AgentSessionID = copyPtr(c.AgentSessionID)
	return &v
}

// copyValue copies JSON-decoded values (maps, slices and scalars).
func copyValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = copyValue(x)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, x := range v {
			s[i] = copyValue(x)
		}
		return s
	default:
		return v
	}
}
