#!/usr/bin/env node
import { runBin } from '@prompt-valet/core';
import { main } from '../dist/main.js';
runBin(main);
