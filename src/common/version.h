/* SPDX-License-Identifier: Apache-2.0 */
#ifndef MSE_VERSION_H
#define MSE_VERSION_H

#define MSE_VERSION "0.1.0"

#endif
