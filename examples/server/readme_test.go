package main

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// repoRoot is the repository root, from this package's directory.
const repoRoot = "../.."

// TestREADMEServerCommands holds the README's server commands to the
// repository: the rules file it starts with exists, the log line it shows
// is the one the server prints for that file, and what the commands build
// and write is ignored by git.
func TestREADMEServerCommands(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?m)^go build -o (\\S+) \\./examples/server\n\\./(\\S+) (.*)\n# (\\{.*\"msg\":\"rules loaded\".*\\})$").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no `go build -o X ./examples/server`, `./X ...` and rules-loaded log line")
	}
	binary, args, logged := string(m[1]), strings.Fields(string(m[3])), string(m[4])
	if string(m[2]) != binary {
		t.Errorf("README builds %s and runs %s", binary, m[2])
	}
	var data, rulesFile string
	for i := 0; i+1 < len(args); i += 2 {
		switch args[i] {
		case "-data":
			data = args[i+1]
		case "-rules":
			rulesFile = args[i+1]
		}
	}
	if rulesFile == "" || data == "" {
		t.Fatalf("README's server command %q lacks -data or -rules", args)
	}
	ignore, err := os.ReadFile(filepath.Join(repoRoot, ".gitignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/" + binary, "/" + data + "/"} {
		if !strings.Contains("\n"+string(ignore)+"\n", "\n"+p+"\n") {
			t.Errorf(".gitignore does not cover %s, which the README's commands create", p)
		}
	}

	// Run the server as the README does (from the repository root) and
	// compare its rules-loaded line with the README's.
	var want struct {
		Msg, File              string
		Audiences, Experiences int
	}
	if err := json.Unmarshal([]byte(strings.ReplaceAll(logged, "…", "")), &want); err != nil {
		t.Fatalf("README's log line %s: %v", logged, err)
	}
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done, ready := make(chan error, 1), make(chan string, 1)
	runArgs := []string{"-addr", "127.0.0.1:0", "-data", filepath.Join(t.TempDir(), data),
		"-rules", filepath.Join(repoRoot, rulesFile)}
	go func() { done <- run(ctx, runArgs, func(string) string { return "" }, logs, nil, ready) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("the README's server command fails: %v\n%s", err, logs)
	case <-time.After(20 * time.Second):
		t.Fatal("server did not start")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var got struct {
		Msg, File              string
		Audiences, Experiences int
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"rules loaded"`) {
			if err := json.Unmarshal([]byte(line), &got); err != nil {
				t.Fatal(err)
			}
		}
	}
	got.File = strings.TrimPrefix(filepath.ToSlash(got.File), repoRoot+"/")
	if got != want {
		t.Errorf("README shows %+v, the server logs %+v", want, got)
	}
}

// TestDocsStandAlone checks that the repository's documentation depends on
// nothing outside it: no mention of the original specification, no
// relative link that leaves the repository or names a missing file.
func TestDocsStandAlone(t *testing.T) {
	link := regexp.MustCompile(`\]\(([^)#\s]+)(#[^)]*)?\)`)
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "node_modules" || n == "testdata" || (strings.HasPrefix(n, ".") && path != repoRoot) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".md") && !strings.HasSuffix(path, ".go") ||
			path == filepath.Join(repoRoot, "examples", "server", "readme_test.go") { // names what it looks for
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		text := string(b)
		for _, bad := range []string{"SPEC section", "SPEC.md", "shared/SPEC", "../shared/"} {
			if strings.Contains(text, bad) {
				t.Errorf("%s mentions %q, which is not in the repository", path, bad)
			}
		}
		if !strings.HasSuffix(path, ".md") {
			return nil
		}
		for _, m := range link.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			resolved := filepath.Join(filepath.Dir(path), target)
			if rel, err := filepath.Rel(repoRoot, resolved); err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s links %s, outside the repository", path, target)
				continue
			}
			if _, err := os.Stat(resolved); err != nil {
				t.Errorf("%s links %s, which does not exist", path, target)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
