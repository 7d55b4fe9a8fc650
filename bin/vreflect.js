#!/usr/bin/env node
'use strict';
// Entry point only: the CLI lives in src/cli (compiled to dist/src/cli).
require('../dist/src/cli/main.js').main(process.argv);
