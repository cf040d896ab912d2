/* placeholder: routes of this module land with its module. */
#include "server/handlers.h"
const http_route http_routes_native[] = { { 0 } };
