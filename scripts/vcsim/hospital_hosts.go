// Host hardware for Tomaranai's vSphere tests, compiled beside ../shared/tools/vcsim/main.go by
// scripts/ci-vsphere.sh. vcsim's hosts all copy one template (2 cores, 4 GiB), too small for the
// reference hospital's VMs (a 16 vCPU / 256 GiB EHR database), so an imported blueprint would not
// validate. When VCSIM_HOST_CORES, VCSIM_HOST_MHZ, VCSIM_HOST_MEMORY_GIB or VCSIM_HOST_MODEL are set,
// this file changes the template before main builds the model; unset, vcsim is unchanged.
package main

import (
	"os"
	"strconv"

	"github.com/vmware/govmomi/simulator/esx"
)

func init() {
	hardware := esx.HostSystem.Summary.Hardware
	if cores, err := strconv.Atoi(os.Getenv("VCSIM_HOST_CORES")); err == nil && cores > 0 {
		hardware.NumCpuCores = int16(cores)
		hardware.NumCpuThreads = int16(cores)
		esx.HostHardwareInfo.CpuInfo.NumCpuCores = int16(cores)
		esx.HostHardwareInfo.CpuInfo.NumCpuThreads = int16(cores)
	}
	if mhz, err := strconv.Atoi(os.Getenv("VCSIM_HOST_MHZ")); err == nil && mhz > 0 {
		hardware.CpuMhz = int32(mhz)
		esx.HostHardwareInfo.CpuInfo.Hz = int64(mhz) * 1000 * 1000
	}
	if gib, err := strconv.Atoi(os.Getenv("VCSIM_HOST_MEMORY_GIB")); err == nil && gib > 0 {
		hardware.MemorySize = int64(gib) * 1024 * 1024 * 1024
		esx.HostHardwareInfo.MemorySize = int64(gib) * 1024 * 1024 * 1024
	}
	if model := os.Getenv("VCSIM_HOST_MODEL"); model != "" {
		hardware.Model = model
	}
}
