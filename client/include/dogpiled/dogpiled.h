// The dogpiled client SDK, all of it. See client.h for the connection,
// session.h for leases, dogpile.h for the dogpile lock, rwmutex.h for the
// read-write mutex and name_registry.h for the in-process registry.
#pragma once

#include "dogpiled/client.h"
#include "dogpiled/dogpile.h"
#include "dogpiled/name_registry.h"
#include "dogpiled/rwmutex.h"
#include "dogpiled/session.h"
#include "dogpiled/status.h"
