#!/bin/sh
# hello: the body is JSON such as {"name":"Johnny"}; prints "Hello Johnny!",
# or "Hello World!" when there is no (non-empty) name.
body=$(cat | tr -d '\r\n')
name=$(printf '%s' "$body" | sed -n 's/.*"name"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
echo "Hello ${name:-World}!"
