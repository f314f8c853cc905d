# One-shot `rsclip search` benchmark (tests/bench/oneshot_search.sh): the index builder.
add_executable(oneshot_index ${CMAKE_CURRENT_LIST_DIR}/oneshot_index.c)
target_link_libraries(oneshot_index PRIVATE rsclip_core m)
target_compile_definitions(oneshot_index PRIVATE _GNU_SOURCE)
