package engine_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCIRunsAllocationBudgets is the regression test of allocation budgets
// that never ran in CI: they skip under -race and CI ran only -race. It
// finds every test in the repository that calls testing.AllocsPerRun
// (directly or through a helper of its file) and checks that .ci/run has
// a step without -race whose -run pattern selects it.
func TestCIRunsAllocationBudgets(t *testing.T) {
	ci, err := os.ReadFile("../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	var run *regexp.Regexp
	for _, line := range strings.Split(string(ci), "\n") {
		line = strings.TrimSpace(line)
		m := regexp.MustCompile(`^go test .*-run '([^']+)' .*\./\.\.\.`).FindStringSubmatch(line)
		if m != nil && !strings.Contains(line, "-race") {
			run = regexp.MustCompile(m[1])
		}
	}
	if run == nil {
		t.Fatal(".ci/run has no `go test -run '...' ./...` step without -race for the allocation budgets")
	}

	var tests []string
	err = filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return err
		}
		tests = append(tests, allocTests(f)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(tests) < 7 {
		t.Fatalf("found only %d allocation tests: %v", len(tests), tests)
	}
	for _, name := range tests {
		if !run.MatchString(name) {
			t.Errorf("%s calls testing.AllocsPerRun but .ci/run's pattern %q does not select it", name, run)
		}
	}
}

// allocTests returns the Test functions of f that call testing.AllocsPerRun
// or a function of f that does.
func allocTests(f *ast.File) []string {
	calls := func(body ast.Node, names map[string]bool) bool {
		found := false
		ast.Inspect(body, func(n ast.Node) bool {
			c, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			switch fn := c.Fun.(type) {
			case *ast.SelectorExpr:
				if x, ok := fn.X.(*ast.Ident); ok && x.Name == "testing" && fn.Sel.Name == "AllocsPerRun" {
					found = true
				}
			case *ast.Ident:
				found = found || names[fn.Name]
			}
			return !found
		})
		return found
	}
	helpers := map[string]bool{}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Body != nil && !strings.HasPrefix(fd.Name.Name, "Test") && calls(fd.Body, nil) {
			helpers[fd.Name.Name] = true
		}
	}
	var out []string
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Body != nil && strings.HasPrefix(fd.Name.Name, "Test") && calls(fd.Body, helpers) {
			out = append(out, fd.Name.Name)
		}
	}
	return out
}
