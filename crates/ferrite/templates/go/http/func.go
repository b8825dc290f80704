// A hot function (format: http): Ferrite starts this program once and keeps
// its container up; each call arrives on stdin as an HTTP/1.1 request, and
// the answer goes to stdout as an HTTP/1.1 response, one call at a time.
// stderr is the log. End of input means the container is being stopped: the
// program exits. The app's and route's config keys are environment
// variables, fixed when the container starts; per-call facts come as
// request headers (Fn-Call-Id, ...).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

func main() {
	greeting := os.Getenv("GREETING")
	if greeting == "" {
		greeting = "Hello"
	}
	in := bufio.NewReader(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	for {
		// net/http's own parser: headers in any case, Content-Length bodies.
		req, err := http.ReadRequest(in)
		if err == io.EOF {
			return
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bad request:", err)
			os.Exit(1)
		}
		// The whole body is read before the next request can be; Ferrite
		// bounds its size (FN_MAX_REQUEST_BYTES).
		body, err := io.ReadAll(req.Body)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bad request:", err)
			os.Exit(1)
		}
		name := nameIn(body)
		fmt.Fprintln(os.Stderr, "greeting", name)
		answer := fmt.Sprintf("%s, %s!\n", greeting, name)
		resp := http.Response{
			StatusCode:    http.StatusOK,
			ProtoMajor:    1,
			ProtoMinor:    1,
			Header:        http.Header{"Content-Type": {"text/plain; charset=utf-8"}},
			ContentLength: int64(len(answer)),
			Body:          io.NopCloser(strings.NewReader(answer)),
			Request:       req,
		}
		// Flushed at once: Ferrite waits for the whole response.
		if err := resp.Write(out); err != nil || out.Flush() != nil {
			fmt.Fprintln(os.Stderr, "cannot write the response")
			os.Exit(1)
		}
	}
}

// nameIn reads {"name":"Ada"}; a missing, empty or unreadable name greets
// the World.
func nameIn(body []byte) string {
	var input map[string]any
	if json.Unmarshal(body, &input) == nil {
		if name, ok := input["name"].(string); ok && name != "" {
			return name
		}
	}
	return "World"
}
