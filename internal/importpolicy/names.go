package importpolicy

import (
	"strings"
	"unicode/utf8"
)

// splitPath splits a repo path into components. Backslash counts as a separator
// too: a Windows checkout treats it as one, so "a\.git\config" is as dangerous there
// as "a/.git/config".
func splitPath(p string) []string {
	return strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' })
}

// hfsIgnorable reports whether HFS+ ignores r when comparing names, so ".g\u200cit"
// names ".git" on a Mac.
func hfsIgnorable(r rune) bool {
	switch {
	case r == 0x200c, r == 0x200d, r == 0x200e, r == 0x200f:
		return true
	case r >= 0x202a && r <= 0x202e:
		return true
	case r >= 0x206a && r <= 0x206f:
		return true
	case r == 0xfeff:
		return true
	}
	return false
}

// canonicalName folds the ways NTFS and HFS+ let a name alias another: HFS+
// ignorable code points are dropped, an NTFS alternate-stream suffix (":stream" or
// "::$INDEX_ALLOCATION") is cut, and NTFS's trailing dots and spaces are trimmed.
// Case is left to the caller's comparison.
func canonicalName(name string) string {
	if strings.ContainsFunc(name, hfsIgnorable) {
		var b strings.Builder
		for i := 0; i < len(name); {
			r, size := utf8.DecodeRuneInString(name[i:])
			if r == utf8.RuneError && size == 1 {
				b.WriteByte(name[i]) // keep invalid bytes as they are
			} else if !hfsIgnorable(r) {
				b.WriteRune(r)
			}
			i += size
		}
		name = b.String()
	}
	if i := strings.IndexByte(name, ':'); i >= 0 {
		name = name[:i]
	}
	return strings.TrimRight(name, ". ")
}

// isDotGit reports whether a path component names the git directory on some file
// system: ".git" in any case, its NTFS 8.3 short name "git~N", and their NTFS/HFS+
// aliases.
func isDotGit(component string) bool {
	c := canonicalName(component)
	return strings.EqualFold(c, ".git") || isShortName(c, "git~")
}

// isDotGitmodules is isDotGit for ".gitmodules"; "gi7eba~N" is the short name
// Windows derives for it (git checks the same).
func isDotGitmodules(component string) bool {
	c := canonicalName(component)
	return strings.EqualFold(c, ".gitmodules") || isShortName(c, "gitmod~") || isShortName(c, "gi7eba~")
}

// isShortName reports whether name is prefix followed by one or more ASCII digits,
// ASCII case-insensitively.
func isShortName(name, prefix string) bool {
	if len(name) <= len(prefix) || !strings.EqualFold(name[:len(prefix)], prefix) {
		return false
	}
	for i := len(prefix); i < len(name); i++ {
		if name[i] < '0' || name[i] > '9' {
			return false
		}
	}
	return true
}
