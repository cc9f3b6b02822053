// (filled by the CNN work: see docs/api.md)
#pragma once

#include "soma/nn/module.h"
