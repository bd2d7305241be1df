/* Link events over rtnetlink (issue 18): filled in by the link-watch work. */
#include <node_api.h>

void tw_netlink_init(napi_env env, napi_value exports)
{
	(void)env;
	(void)exports;
}
