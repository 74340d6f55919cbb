// The file exchange commands of mugai (proto/mugai/v1/exchange.proto):
//
//   submit PATH --to USER [--note TEXT] [--key K] [--json]        (ingress)
//   drop watch DIR --to USER [--note TEXT] [--interval S] [--settle S] [--once]
//   inbox list | fetch ID -o DIR | sync DIR [--interval S] [--once]  (egress)
//
// drop watch and inbox sync keep their state in the directory they work on
// (DIR/.mugai-drop/, DIR/.mugai-inbox/), so a restart after a crash or a
// SIGKILL at any point neither repeats nor loses a file: see
// /tmp/design/cli-9.md (DESIGN.md, "File exchange clients").
#pragma once

#include "service/cli/cli_common.h"

namespace mugai::cli {

// Exit: 0 delivered, 2 held or rejected, 1 error.
int Submit(const Options& o);

// "drop watch ...". Exit: 0 when stopped (SIGTERM, SIGINT) or, with
// --once, when every file was handled; 1 when a file is left to retry.
int Drop(const Options& o);

// "inbox list|fetch|sync ...". Exit: 0, or 1 when an entry failed.
int Inbox(const Options& o);

}  // namespace mugai::cli
