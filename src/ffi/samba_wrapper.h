/* The Samba headers bindgen reads (from the prepared tree). */
#include "includes.h"
#include "smbd/smbd.h"
