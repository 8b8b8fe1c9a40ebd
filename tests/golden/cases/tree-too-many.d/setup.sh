# 10001 manifests, one instance each (unique names): only the first 10000 in byte
# order are read, with one error for the tree. Made here to keep the repository small
# (one awk, not a process per file).
exec awk 'BEGIN {
        for (i = 0; i <= 10000; i++) {
                f = sprintf("m%05d.yaml", i)
                printf "name: many-%05d\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\nspec:\n  storage:\n    type: evs\n", i >f
                close(f)
        }
}'
