/** The judge's port: beside the control API's (8090), free in the local stack and in the pods. */
export const JUDGE_PORT = 8095;
