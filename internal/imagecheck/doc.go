// Package imagecheck checks a directory of CRIU images before CRIU reads
// it. CRIU trusts its images: a pages file cut short makes CRIU 4.1.1 loop
// forever in its page reads (fixed upstream only after 4.2.1), and most
// other damage shows up deep into a restore, if at all. Check finds the
// damage first and names the file and what is wrong with it, in one line.
//
// What Check reads, and what it requires:
//
//   - inventory.img decodes, and its format is one CRIU 4.x reads:
//     img_version 1 or 2, with per-id fdinfo images (older images CRIU
//     refuses as "too old") and no zero root cgroup set.
//   - every image it decodes starts with the magic its format puts there
//     (version 2: the common head magic, then the image's own), and its
//     entries fit in the file.
//   - pstree.img decodes and names at least one task; for each task, the
//     core image of the task and of each of its threads decodes, is for
//     this machine's architecture and has the parts CRIU dereferences;
//     a live or stopped task also has an mm image that decodes and a
//     pagemap image.
//   - every pagemap CRIU reads (pagemap-<pid>.img of each task of
//     pstree.img, and every pagemap-shmem-*.img) decodes, and the pages
//     CRIU wrote for it (entries flagged PE_PRESENT, after CRIU's own
//     compatibility rule for old images) add up exactly to the size of the
//     pages-<pages_id>.img its head names. Pages files are only stat'ed,
//     never read. Pagemaps of other pids, left by an older dump into the
//     same directory, CRIU never opens, and neither does Check.
//   - a parent link (incremental dumps) resolves to a directory with its
//     own inventory.img, without looping back; pages a pagemap keeps in
//     the parent (PE_PARENT) have a pagemap there; and the parent's
//     inventory and those same pagemaps pass the same checks, up the
//     chain. A parent may be a pre-dump, whose bare inventory has no
//     format version: CRIU reads its pagemaps in the format of the dump
//     it restores, and so does Check. The directory Check is given may
//     not be one: a pre-dump holds no process tree to restore.
//
// It does not check the rest (files, sockets, namespaces, the memory's
// contents): CRIU reports those itself, early and clearly enough.
//
// The protobuf payloads are decoded by go-criu's crit package. crit
// trusts each entry's size field (it allocates what the field says and
// does not notice a short read), so Check walks the entry framing itself
// first.
package imagecheck
