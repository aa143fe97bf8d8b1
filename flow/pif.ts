/**
 * pif.ts - the interfaces a flow side can be on ("pif" in passt).
 *
 * @module
 */

/** The guest, behind the tap (or the qemu socket). */
export const PIF_TAP = 1;
/** The host: ordinary sockets in orzo's own namespace. */
export const PIF_HOST = 2;
/** The guest's namespace, reached by sockets opened there (splice, -T/-U). */
export const PIF_SPLICE = 3;

/** Names of the interfaces, for logs. */
export const PIF_NAMES: readonly string[] = ["<none>", "TAP", "HOST", "SPLICE"];
