/* sampler.h — the flow schedule and the samplers of the reference (sd3_impls.py
 * ModelSamplingDiscreteFlow, sd3_infer.py get_sigmas/do_sampling, Euler and DPM++ 2M). */
#ifndef SD35_SAMPLER_H
#define SD35_SAMPLER_H

#include "sd35.h"

/* steps+1 sigmas (last 0) for shift; the shift is applied twice, as the reference does. */
void sampler_sigmas (int steps, double shift, float *sigmas /* steps+1 */);
/* img2img start index: int(steps·(1−denoise)) with Python float semantics */
int  sampler_img2img_start (int steps, double denoise);

#endif
