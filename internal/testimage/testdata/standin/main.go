// Command standin plays both trakkar-worker and claude in the test image built by
// the testimage tests, so they do not depend on the real programs. As the worker
// it reports what it sees of the image; as claude it prints one marker line.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func main() {
	if filepath.Base(os.Args[0]) == "claude" {
		fmt.Println("standin-claude")
		return
	}
	fmt.Printf("uid=%d gid=%d\n", os.Getuid(), os.Getgid())
	fmt.Printf("home=%s\n", os.Getenv("HOME"))
	fmt.Printf("path=%s\n", os.Getenv("PATH"))
	wd, _ := os.Getwd()
	fmt.Printf("workdir=%s\n", wd)
	fmt.Printf("claude=%s\n", output("claude"))
	fmt.Printf("user=%s\n", output("sh", "-c", "id -un"))
	fmt.Printf("group=%s\n", output("sh", "-c", "id -gn"))
	if err := os.WriteFile("/tmp/standin", []byte("x"), 0o600); err != nil {
		fmt.Printf("tmp=err:%v\n", err)
	} else {
		fmt.Println("tmp=ok")
	}
}

func output(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("err:%v", err)
	}
	return strings.TrimSpace(string(out))
}
