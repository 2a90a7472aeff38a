#include "CNGRPCShims.h"
