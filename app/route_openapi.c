/* placeholder: being written (OpenAPI) */
#include "config.h"
#include "extern.h"
void
route_openapi(struct request *r)
{
	resp_error(r, ERR_NOT_FOUND, NULL);
}
