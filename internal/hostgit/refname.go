package hostgit

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxBranchLen bounds branch names (bytes).
const MaxBranchLen = 200

// DefaultBranchPrefix is used by BranchName when prefix is empty.
const DefaultBranchPrefix = "trakkar/"

// ValidateBranch reports whether name is a safe branch name: it applies the rules of
// `git check-ref-format --branch` and is stricter — no leading '-', no whitespace or
// control/format characters of any script, valid UTF-8, at most MaxBranchLen bytes.
func ValidateBranch(name string) error {
	if err := validateBranch(name); err != nil {
		return fmt.Errorf("invalid branch name %q: %w", name, err)
	}
	return nil
}

func validateBranch(name string) error {
	switch {
	case name == "":
		return errors.New("empty")
	case len(name) > MaxBranchLen:
		return fmt.Errorf("longer than %d bytes", MaxBranchLen)
	case !utf8.ValidString(name):
		return errors.New("not valid UTF-8")
	case name[0] == '-':
		return errors.New("starts with '-'")
	case name == "@":
		return errors.New("is '@'")
	case name == "HEAD":
		return errors.New("is HEAD")
	case strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/"):
		return errors.New("starts or ends with '/'")
	case strings.HasSuffix(name, "."):
		return errors.New("ends with '.'")
	case strings.Contains(name, ".."):
		return errors.New("contains '..'")
	case strings.Contains(name, "@{"):
		return errors.New("contains '@{'")
	}
	for _, r := range name {
		switch {
		case r < 0x20 || r == 0x7f:
			return errors.New("contains a control character")
		case unicode.IsSpace(r):
			return errors.New("contains whitespace")
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			return errors.New("contains a control or format character")
		case strings.ContainsRune("~^:?*[\\", r):
			return fmt.Errorf("contains %q", r)
		}
	}
	for _, comp := range strings.Split(name, "/") {
		switch {
		case comp == "":
			return errors.New("contains '//'")
		case comp[0] == '.':
			return errors.New("a component starts with '.'")
		case strings.HasSuffix(comp, ".lock"):
			return errors.New("a component ends with '.lock'")
		}
	}
	return nil
}

// Slug lowercases s to ASCII [a-z0-9-]: every other character becomes '-', runs of
// '-' collapse and leading/trailing '-' are trimmed. With max > 0 the result is cut to
// at most max bytes, on a '-' boundary when that keeps at least half of it. An empty
// result becomes "task".
func Slug(s string, max int) string {
	var b strings.Builder
	b.Grow(len(s))
	dash := true // suppresses leading '-'
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r + ('a' - 'A'))
			dash = false
		default:
			if !dash {
				b.WriteByte('-')
				dash = true
			}
		}
	}
	out := strings.TrimRight(b.String(), "-")
	if max > 0 && len(out) > max {
		cut := out[:max]
		if out[max] != '-' {
			if i := strings.LastIndexByte(cut, '-'); i >= max/2 {
				cut = cut[:i]
			}
		}
		out = strings.TrimRight(cut, "-")
	}
	if out == "" {
		return "task"
	}
	return out
}

// maxKeySlug bounds the task-key part of a branch name.
const maxKeySlug = 64

// maxTitleSlug bounds the title part of a branch name.
const maxTitleSlug = 40

// BranchName builds prefix + slug(key) + "-" + slug(title) (title cut at 40 bytes) and
// validates the result. An empty prefix means DefaultBranchPrefix.
func BranchName(prefix, key, title string) (string, error) {
	if prefix == "" {
		prefix = DefaultBranchPrefix
	}
	name := prefix + Slug(key, maxKeySlug) + "-" + Slug(title, maxTitleSlug)
	if err := ValidateBranch(name); err != nil {
		return "", fmt.Errorf("branch name from prefix %q: %w", prefix, err)
	}
	return name, nil
}

// validateArg rejects strings that git could parse as an option or that carry
// characters no ref, remote name or revision needs.
func validateArg(kind, s string) error {
	if s == "" {
		return fmt.Errorf("empty %s", kind)
	}
	if s[0] == '-' {
		return fmt.Errorf("invalid %s %q: starts with '-'", kind, s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || unicode.IsSpace(r) {
			return fmt.Errorf("invalid %s %q: contains whitespace or a control character", kind, s)
		}
	}
	return nil
}
