package workerproto

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// KeyFile, in the output directory, holds the per-container key of the line
// signatures (hex). The worker reads and removes it before the agent starts,
// so afterwards the key is only in the worker's memory, which the agent cannot
// read (the worker is non-dumpable).
const KeyFile = ".event-key"

// macLen is the length of a signature as written: hex of HMAC-SHA256.
const macLen = 2 * sha256.Size

// Sign prefixes an encoded line (with or without its newline) with its
// signature and a space. The agent can reach the container's stdout under some
// runtimes (gVisor lets a same-uid process open another's fds), but cannot
// sign.
func Sign(key, line []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(bytes.TrimRight(line, "\n"))
	out := make([]byte, 0, macLen+1+len(line))
	out = hex.AppendEncode(out, m.Sum(nil))
	out = append(out, ' ')
	return append(out, line...)
}

// Verify checks a signed line (without its newline) and returns the line
// without the signature; ok is false when the line was not signed with key.
func Verify(key, raw []byte) (line []byte, ok bool) {
	if len(raw) <= macLen || raw[macLen] != ' ' {
		return nil, false
	}
	got := make([]byte, sha256.Size)
	if _, err := hex.Decode(got, raw[:macLen]); err != nil {
		return nil, false
	}
	line = raw[macLen+1:]
	m := hmac.New(sha256.New, key)
	m.Write(line)
	if !hmac.Equal(got, m.Sum(nil)) {
		return nil, false
	}
	return line, true
}

// SignCount signs the number of lines a worker wrote, for its result file: the
// supervisor learns how many lines to expect, so losing the last ones to log
// rotation is seen too. The agent can rewrite the result file, not the
// signature.
func SignCount(key []byte, n int64) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("lines:" + strconv.FormatInt(n, 10)))
	return hex.EncodeToString(m.Sum(nil))
}

// VerifyCount checks a signature made by SignCount.
func VerifyCount(key []byte, n int64, sig string) bool {
	got, err := hex.DecodeString(sig)
	if err != nil || len(key) == 0 {
		return false
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("lines:" + strconv.FormatInt(n, 10)))
	return hmac.Equal(got, m.Sum(nil))
}
