// The public API of bringup in one include.
#pragma once

#include "bringup/chat.h"
#include "bringup/checkpoint.h"
#include "bringup/config.h"
#include "bringup/error.h"
#include "bringup/model.h"
#include "bringup/precision.h"
#include "bringup/tokenizer.h"
