package fakeagent

import (
	"fmt"
	"strings"
)

// flagSpec is one CLI's flags, for scanFlags.
type flagSpec struct {
	bools  map[string]*bool
	values map[string]*string
	// optional handles a flag whose value may be missing: rest is what follows
	// the flag, and it returns how many of those it took.
	optional map[string]func(val string, hasVal bool, rest []string) int
}

// scanFlags parses args the way both CLIs do: "--name=value"
// or "--name value", "--" ends the flags, and the rest is positional.
func scanFlags(args []string, spec flagSpec) ([]string, error) {
	var positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			positional = append(positional, a)
			continue
		}
		name, val, hasVal := strings.Cut(a, "=")
		if p, ok := spec.bools[name]; ok && !hasVal {
			*p = true
			continue
		}
		if f, ok := spec.optional[name]; ok {
			i += f(val, hasVal, args[i+1:])
			continue
		}
		p, ok := spec.values[name]
		if !ok {
			return nil, usageError{fmt.Sprintf("error: unknown option '%s'", name)}
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, usageError{fmt.Sprintf("error: option '%s <value>' argument missing", name)}
			}
			i++
			val = args[i]
		}
		*p = val
	}
	return positional, nil
}
