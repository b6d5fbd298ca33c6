// compose-check loads a Compose file as `docker compose` does, with compose-go, the
// library Docker Compose is built on: interpolation from the env file given (and no
// other: not this process's environment), the Compose Specification's schema, and the
// loader's own checks (services named in depends_on, volumes declared …). It prints the
// resolved project as JSON, or the loader's errors and exits 1. The test suite runs it
// on docker-compose.yml (tests/ops/test_compose.py), where there is no Docker engine.
//
//	compose-check COMPOSE_FILE ENV_FILE
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: compose-check COMPOSE_FILE ENV_FILE")
		os.Exit(2)
	}
	if err := check(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func check(composeFile, envFile string) error {
	options, err := cli.NewProjectOptions([]string{composeFile},
		cli.WithEnvFiles(envFile), cli.WithDotEnv, cli.WithName("urne"))
	if err != nil {
		return err
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return err
	}
	resolved, err := project.MarshalJSON()
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(resolved)
	return err
}
