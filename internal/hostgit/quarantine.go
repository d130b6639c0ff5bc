package hostgit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Staging hashes whatever the agent left, however big, before the import policy
// has looked at it. So StageAll writes objects into a quarantine (git's
// GIT_OBJECT_DIRECTORY, with the real store as an alternate for reading), the
// way receive-pack quarantines a push: Unstage throws it away, CommitStaged moves
// it into the user's store. Nothing refused ever reaches .git/objects.

// quarantineName is the folder in the worktree's admin dir (supervisor-owned,
// never mounted, removed with the worktree) that holds staged objects.
const quarantineName = "trakkar-quarantine"

func quarantineDir(wt Worktree) string { return filepath.Join(wt.GitDir, quarantineName) }

// objectsDir is the object store shared by the repository and its worktrees.
func (g *Git) objectsDir(ctx context.Context, gitDir string) (string, error) {
	common, err := g.commonDirOf(ctx, gitDir)
	if err != nil {
		return "", fmt.Errorf("find object store: %w", err)
	}
	return filepath.Join(common, "objects"), nil
}

// quarantineEnv points git's object writes at q and keeps the real store readable.
func quarantineEnv(q, objects string) []string {
	alt := objects
	if strings.ContainsAny(alt, ":\"\\\n") {
		alt = strconv.Quote(alt) // git unquotes a C-style quoted alternate
	}
	return []string{"GIT_OBJECT_DIRECTORY=" + q, "GIT_ALTERNATE_OBJECT_DIRECTORIES=" + alt}
}

// freshQuarantine replaces any quarantine left by an earlier StageAll with an
// empty one and reports whether one was there (the index may then name objects
// that only it held).
func freshQuarantine(q string) (stale bool, err error) {
	if _, err := os.Lstat(q); err == nil {
		stale = true
		if err := os.RemoveAll(q); err != nil {
			return true, fmt.Errorf("remove old quarantine: %w", err)
		}
	}
	if err := os.Mkdir(q, 0o700); err != nil {
		return stale, fmt.Errorf("create quarantine: %w", err)
	}
	return stale, nil
}

// migrateQuarantine moves every complete object in q into the store: loose
// objects first, then packs with each .idx after its .pack, so git never sees an
// index without its pack. An object already in the store is left as it is.
func migrateQuarantine(q, objects string) error {
	ents, err := os.ReadDir(q)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read quarantine: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() || len(e.Name()) != 2 || !isHex(e.Name()) {
			continue
		}
		files, err := os.ReadDir(filepath.Join(q, e.Name()))
		if err != nil {
			return fmt.Errorf("read quarantine: %w", err)
		}
		for _, f := range files {
			// Object names are 38 (SHA-1) or 62 (SHA-256) hex digits; anything else
			// is an unfinished temporary file.
			if n := len(f.Name()); !f.Type().IsRegular() || (n != 38 && n != 62) || !isHex(f.Name()) {
				continue
			}
			if err := moveObject(filepath.Join(q, e.Name(), f.Name()), filepath.Join(objects, e.Name(), f.Name())); err != nil {
				return err
			}
		}
	}
	packs, err := os.ReadDir(filepath.Join(q, "pack"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read quarantine: %w", err)
	}
	var names []string
	for _, p := range packs {
		if p.Type().IsRegular() && strings.HasPrefix(p.Name(), "pack-") {
			names = append(names, p.Name())
		}
	}
	slices.SortStableFunc(names, func(a, b string) int {
		return packRank(a) - packRank(b)
	})
	for _, n := range names {
		if err := moveObject(filepath.Join(q, "pack", n), filepath.Join(objects, "pack", n)); err != nil {
			return err
		}
	}
	return nil
}

// packRank orders a pack's files: the data, then the reverse index, then the
// index that makes git use it.
func packRank(name string) int {
	switch filepath.Ext(name) {
	case ".pack":
		return 0
	case ".idx":
		return 2
	default:
		return 1
	}
}

// moveObject hard-links src into place (never overwriting an object already
// there) and falls back to a rename where links are not supported.
func moveObject(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("migrate staged objects: %w", err)
	}
	err := os.Link(src, dst)
	switch {
	case err == nil, errors.Is(err, fs.ErrExist):
		return nil
	}
	if _, statErr := os.Lstat(dst); statErr == nil {
		return nil
	}
	if err := os.Rename(src, dst); err != nil {
		return fmt.Errorf("migrate staged objects: %w", err)
	}
	return nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return s != ""
}
