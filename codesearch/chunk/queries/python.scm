; Definitions for the Python chunker.
; @definition.function: functions (methods when directly inside a class)
; @definition.class: classes; @name: the symbol name
(function_definition name: (identifier) @name) @definition.function
(class_definition name: (identifier) @name) @definition.class
