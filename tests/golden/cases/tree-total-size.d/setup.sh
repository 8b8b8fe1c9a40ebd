# 66 manifests of just under 1 MiB each (a manifest padded with comments): the 65th
# takes the scan past 64 MiB, so it and the one after it are not read; the 64 before
# are. Generated here: git should not hold 66 MiB.
i=0
while [ $i -lt 66 ]; do
        f=$(printf 'f-%02d.yaml' $i)
        printf 'name: f-%02d\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\nspec:\n  storage:\n    type: evs\n' $i >"$f"
        head -c 1030000 /dev/zero | tr '\0' '#' | fold -w 63 >>"$f"
        i=$((i + 1))
done
